using System.CommandLine;
using HostVM.Vmm;

namespace HostVM.Cli;

/// <summary>`hostvm vmm`: one VM per process behind a Firecracker-style control API on a Unix socket (the options are <see cref="VmmCommandLine"/>'s, shared with hostvm-vmm).</summary>
public static class VmmCommand
{
    public static Command Create() => VmmCommandLine.AddTo(new Command("vmm", VmmCommandLine.Description));
}
