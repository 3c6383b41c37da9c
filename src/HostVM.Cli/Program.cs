using System.CommandLine;

namespace HostVM.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("HostVM: a RISC-V (RV64GC) virtual machine host, in managed code.");
        root.Subcommands.Add(RunCommand.Create());
        root.Subcommands.Add(VmmCommand.Create());
        root.Subcommands.Add(ServeCommand.Create());
        return root.Parse(args).Invoke();
    }
}
