using System.CommandLine;
using System.Globalization;
using HostVM.Host.Api;
using Spectre.Console;

namespace HostVM.Cli;

/// <summary>`hostvm network forward ...`: host ports forwarded into the VMs of a NAT network.</summary>
public static class ForwardCommands
{
    public static Command Create(DaemonCommandRunner runner) => new("forward", "Forward host ports into the VMs of a NAT network.")
    {
        AddCommand(runner),
        ListCommand(runner),
        RemoveCommand(runner),
    };

    private static Command AddCommand(DaemonCommandRunner runner)
    {
        var network = new Argument<string>("network") { Description = "A network with a NAT." };
        var host = new Argument<string>("host") { Description = "[ADDRESS:]PORT on the host: 127.0.0.1 unless an address is given (another: the host's admin only); port 0 lets the OS choose; below 1024: the host's admin only." };
        var target = new Argument<string>("target") { Description = "VM:PORT: a VM with a NIC on the network, and the port in the guest." };
        var protocol = ProtocolOption();
        var command = new Command("add", "Forward a host port to a VM's port; connections go to the address DHCP gave the VM's NIC.") { network, host, target, protocol };
        runner.SetAction(command, async call =>
        {
            var (address, hostPort) = ParseHost(call.Get(host));
            string targetText = call.Get(target);
            int colon = targetText.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(targetText[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int guestPort))
            {
                throw new UsageException($"target '{targetText}': write VM:PORT, e.g. web:22.");
            }

            var request = new AddForwardRequest { Protocol = call.Get(protocol), Address = address, HostPort = hostPort, Vm = targetText[..colon], GuestPort = guestPort };
            var added = await call.Client.AddForwardAsync(call.Get(network), request, call.CancellationToken).ConfigureAwait(false);
            return call.Print(added, (screen, f) => screen.MarkupLine(
                $"Forwarding {f.Protocol} [bold]{Markup.Escape(Endpoint(f))}[/] to {Markup.Escape(f.Vm)}:{f.GuestPort.ToString(CultureInfo.InvariantCulture)}."));
        });
        return command;
    }

    private static Command ListCommand(DaemonCommandRunner runner)
    {
        var network = new Argument<string>("network") { Description = "A network with a NAT." };
        var command = new Command("list", "List a network's forwards.") { network };
        command.Aliases.Add("ls");
        runner.SetAction(command, async call => call.PrintTable(
            await call.Client.ListForwardsAsync(call.Get(network), call.CancellationToken).ConfigureAwait(false),
            "No forwards: add one with `hostvm network forward add NET [ADDR:]PORT VM:PORT`.",
            ["PROTOCOL", "HOST", "VM", "GUEST PORT", "LISTENING"],
            f => [f.Protocol, Markup.Escape(Endpoint(f)), HumanOutput.Escape(f.Vm), f.GuestPort.ToString(CultureInfo.InvariantCulture), f.Listening ? "yes" : "no"]));
        return command;
    }

    private static Command RemoveCommand(DaemonCommandRunner runner)
    {
        var network = new Argument<string>("network") { Description = "A network with a NAT." };
        var host = new Argument<string>("host") { Description = "[ADDRESS:]PORT: the forward's host port (the address, if given, must be the forward's)." };
        var protocol = ProtocolOption();
        var command = new Command("remove", "Close a forward; connections it carries finish.") { network, host, protocol };
        command.Aliases.Add("rm");
        runner.SetAction(command, async call =>
        {
            var (address, port) = ParseHost(call.Get(host));
            string protocolName = call.Get(protocol) ?? "tcp";
            if (address is not null)
            {
                var forwards = (await call.Client.ListForwardsAsync(call.Get(network), call.CancellationToken).ConfigureAwait(false)).Value;
                if (!forwards.Any(f => f.Protocol == protocolName && f.HostPort == port && f.Address == address))
                {
                    throw new UsageException($"network {call.Get(network)} has no {protocolName} forward on {address}:{port} (hostvm network forward list {call.Get(network)}).");
                }
            }

            await call.Client.RemoveForwardAsync(call.Get(network), protocolName, port, call.CancellationToken).ConfigureAwait(false);
            return call.Say($"Removed the {protocolName} forward of port {port.ToString(CultureInfo.InvariantCulture)} from network [bold]{Markup.Escape(call.Get(network))}[/].");
        });
        return command;
    }

    private static Option<string?> ProtocolOption()
    {
        var option = new Option<string?>("--protocol") { Description = "tcp (the default) or udp." };
        option.AcceptOnlyFromAmong("tcp", "udp");
        return option;
    }

    private static (string? Address, int Port) ParseHost(string text)
    {
        int colon = text.LastIndexOf(':');
        string portText = colon < 0 ? text : text[(colon + 1)..];
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > 65535 || colon == 0)
        {
            throw new UsageException($"'{text}': write the host side as [ADDRESS:]PORT, e.g. 8080 or 127.0.0.1:8080 (0: any free port).");
        }

        return (colon < 0 ? null : text[..colon], port);
    }

    private static string Endpoint(ForwardView forward) => string.Create(CultureInfo.InvariantCulture, $"{forward.Address}:{forward.HostPort}");
}
