using System.CommandLine;
using HostVM.Cli.Api;
using Spectre.Console;

namespace HostVM.Cli;

/// <summary>`hostvm network ...`: the daemon's switches that VMs attach to.</summary>
public static class NetworkCommands
{
    public static Command Create(DaemonCommandRunner runner) => new("network", "Manage networks: switches in the daemon; VMs on one network reach each other.")
    {
        CreateCommand(runner),
        runner.ListCommand(
            "List the networks and the VMs on each.",
            (c, t) => c.ListNetworksAsync(t),
            "No networks yet: create one with `hostvm network create NAME [--nat]`.",
            ["NAME", "PROJECT", "NAT", "VMS", "CREATED"],
            network =>
            [
                Markup.Escape(network.Name),
                HumanOutput.Escape(network.Project),
                !network.Nat ? "no" : network.EgressAllow.Count == 0 ? "yes" : HumanOutput.Escape("yes, also " + string.Join(' ', network.EgressAllow)),
                HumanOutput.Escape(string.Join(", ", network.Vms)),
                HumanOutput.Time(network.CreatedAt),
            ]),
        EgressCommand(runner),
        ForwardCommands.Create(runner),
        runner.DeleteCommand("network", "Delete a network (no VM may be on it).", (c, n, t) => c.DeleteNetworkAsync(n, t)),
    };

    private static Command CreateCommand(DaemonCommandRunner runner)
    {
        var name = new Argument<string>("name") { Description = "The network's name: 1-63 lower-case letters, digits and '-', starting with a letter." };
        var nat = new Option<bool>("--nat") { Description = "Give it a user-mode NAT uplink: DHCP from 10.0.2.15, gateway 10.0.2.2, DNS 10.0.2.3." };
        var project = OptionValues.ProjectOption("network");
        var command = new Command("create", "Create a network.") { name, nat, project };
        runner.SetAction(command, async call =>
        {
            var network = await call.Client.CreateNetworkAsync(new CreateNetworkRequest { Name = call.Get(name), Nat = call.Get(nat), Project = call.Get(project) }, call.CancellationToken).ConfigureAwait(false);
            return call.Print(network, (screen, n) => screen.MarkupLine($"Created network [bold]{Markup.Escape(n.Name)}[/]{(n.Nat ? " with NAT" : string.Empty)}."));
        });
        return command;
    }

    private static Command EgressCommand(DaemonCommandRunner runner)
    {
        var name = new Argument<string>("name") { Description = "A network with a NAT." };
        var allow = new Option<string[]>("--allow")
        {
            Description = "A destination its guests may reach although the default refuses it (the host, loopback, private and link-local ranges): ADDRESS[/PREFIX][:PORT], e.g. 10.1.2.3:5432; repeat for more. None: only the public internet.",
            AllowMultipleArgumentsPerToken = false,
        };
        var command = new Command("egress", "Set where a NAT network's guests may go besides the public internet (the host's admin only); replaces the list.") { name, allow };
        runner.SetAction(command, async call =>
        {
            var network = await call.Client.SetNetworkEgressAsync(call.Get(name), call.Get(allow) ?? [], call.CancellationToken).ConfigureAwait(false);
            return call.Print(network, (screen, n) => screen.MarkupLine(n.EgressAllow.Count == 0
                ? $"Network [bold]{Markup.Escape(n.Name)}[/]: its guests reach the public internet only."
                : $"Network [bold]{Markup.Escape(n.Name)}[/]: its guests also reach {Markup.Escape(string.Join(' ', n.EgressAllow))}."));
        });
        return command;
    }
}
