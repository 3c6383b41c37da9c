using System.Text;
using HostVM.Machine;

namespace HostVM.Integration.Tests;

/// <summary>Boots a machine in-process, collects its console output and waits for it to end.</summary>
public sealed class GuestRun
{
    private readonly StringBuilder _console = new();

    private GuestRun()
    {
    }

    public string Console
    {
        get
        {
            lock (_console)
            {
                return _console.ToString();
            }
        }
    }

    public MachineExit? Exit { get; private set; }

    public IReadOnlyList<string> HartReport { get; private set; } = [];

    public ulong Instructions { get; private set; }

    public static GuestRun Boot(MachineConfiguration config, TimeSpan timeout)
    {
        var run = new GuestRun();
        using var vm = VirtualMachine.Boot(config, b =>
        {
            lock (run._console)
            {
                run._console.Append((char)b);
            }
        });
        vm.Start();
        run.Exit = vm.WaitForExit(timeout);
        if (run.Exit is null)
        {
            vm.Stop("test timeout");
        }

        run.HartReport = [.. vm.DescribeHarts()];
        run.Instructions = vm.InstructionsRetired;
        return run;
    }

    public static BootFile File(string path) => new(path, System.IO.File.ReadAllBytes(path));

    /// <summary>A failure message with everything needed to see what the guest did.</summary>
    public string Describe() =>
        $"exit: {Exit?.ToString() ?? "none (timed out)"}\n{string.Join('\n', HartReport)}\n--- console ---\n{Console}";
}
