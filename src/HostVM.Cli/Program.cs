using System.CommandLine;
using System.CommandLine.Invocation;

namespace HostVM.Cli;

public static class Program
{
    public const string Description =
        "HostVM: a RISC-V (RV64GC) virtual machine host, in managed code.\n\n" +
        "`hostvm run` boots one VM in this process; `hostvm serve` runs the host daemon, and the vm, image, network, host, " +
        "events and top commands manage its VMs, and token, project and audit its access control (the daemon: --host, else $HOSTVM_HOST, else \"host\" in ~/.config/hostvm/cli.json, " +
        "else its Unix socket, else https://127.0.0.1:8006; --token and --fingerprint, or `hostvm login`, for a daemon over TCP).\n\n" + ExitCodes.Help;

    public static int Main(string[] args) => Run(args, CliEnvironment.FromProcess());

    public static int Run(string[] args, CliEnvironment environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var parse = CreateRoot(environment).Parse(args);
        if (parse.Action is ParseErrorAction)
        {
            foreach (var error in parse.Errors)
            {
                environment.Error.WriteLine($"hostvm: {error.Message}");
            }

            environment.Error.WriteLine($"hostvm: see `{string.Join(' ', CommandPath(parse))} --help`.");
            return ExitCodes.BadCommandLine;
        }

        return parse.InvokeAsync(new InvocationConfiguration { Output = environment.Out, Error = environment.Error }).GetAwaiter().GetResult();
    }

    public static RootCommand CreateRoot(CliEnvironment environment)
    {
        var root = new RootCommand(Description);
        var global = new GlobalOptions();
        global.AddTo(root);
        var runner = new DaemonCommandRunner(environment, global);
        root.Subcommands.Add(RunCommand.Create());
        root.Subcommands.Add(VmmCommand.Create());
        root.Subcommands.Add(ServeCommand.Create());
        root.Subcommands.Add(VmCommands.Create(runner));
        root.Subcommands.Add(ImageCommands.Create(runner));
        root.Subcommands.Add(NetworkCommands.Create(runner));
        root.Subcommands.Add(PoolCommands.Create(runner));
        root.Subcommands.Add(VolumeCommands.Create(runner));
        root.Subcommands.Add(HostCommands.Create(runner));
        root.Subcommands.Add(HostCommands.CreateEvents(runner));
        root.Subcommands.Add(TopCommand.Create(runner));
        root.Subcommands.Add(LoginCommand.Create(environment, global));
        root.Subcommands.Add(TokenCommands.Create(runner));
        root.Subcommands.Add(ProjectCommands.Create(runner));
        root.Subcommands.Add(AuditCommand.Create(runner));
        return root;
    }

    private static IEnumerable<string> CommandPath(ParseResult parse)
    {
        var names = new Stack<string>();
        for (var result = parse.CommandResult; result is not null; result = result.Parent as System.CommandLine.Parsing.CommandResult)
        {
            names.Push(result.Command is RootCommand ? "hostvm" : result.Command.Name);
        }

        return names;
    }
}
