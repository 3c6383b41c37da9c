using BenchmarkDotNet.Running;

namespace HostVM.Bench;

/// <summary>
/// Micro-benchmarks of the engine's hot paths (run: dotnet run -c Release --project bench/HostVM.Bench).
/// Whole-guest comparisons with QEMU are in bench/compare-qemu.sh.
/// </summary>
public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
