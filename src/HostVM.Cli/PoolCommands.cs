using System.CommandLine;
using HostVM.Host.Api;
using Spectre.Console;

namespace HostVM.Cli;

/// <summary>`hostvm pool ...`: the places volumes live (directories the host's admin names).</summary>
public static class PoolCommands
{
    public static Command Create(DaemonCommandRunner runner) => new("pool", "Manage storage pools: directories that hold volumes (the default pool is in the daemon's data directory).")
    {
        CreateCommand(runner),
        runner.ListCommand(
            "List the pools with their space.",
            (c, t) => c.ListPoolsAsync(t),
            "No pools.",
            ["NAME", "DRIVER", "WHERE", "VOLUMES", "ALLOCATED", "AVAILABLE", "CAPACITY"],
            pool =>
            [
                Markup.Escape(pool.Name),
                Markup.Escape(pool.Driver),
                HumanOutput.Escape(pool.Path ?? pool.Address),
                pool.Volumes.ToString(System.Globalization.CultureInfo.InvariantCulture),
                HumanOutput.Bytes(pool.AllocatedBytes),
                HumanOutput.Bytes(pool.AvailableBytes),
                HumanOutput.Bytes(pool.CapacityBytes),
            ]),
        ShowCommand(runner),
        runner.DeleteCommand("pool", "Delete a pool that has no volumes (its directory and any other files in it stay).", (c, n, t) => c.DeletePoolAsync(n, t)),
    };

    private static Command CreateCommand(DaemonCommandRunner runner)
    {
        var name = new Argument<string>("name") { Description = "The pool's name: 1-63 lower-case letters, digits and '-', starting with a letter." };
        var driver = new Option<string?>("--driver") { Description = "dir (the default): volumes are files in a directory; nbd: volumes are the exports of an NBD server." };
        var path = new Option<string?>("--path") { Description = "A dir pool's directory (absolute; made if missing; not in the daemon's data directory)." };
        var address = new Option<string?>("--address") { Description = "An nbd pool's server: HOST:PORT." };
        var description = new Option<string?>("--description") { Description = "A note shown with the pool." };
        var command = new Command("create", "Create a pool (the host's admin).") { name, driver, path, address, description };
        runner.SetAction(command, async call =>
        {
            var pool = await call.Client.CreatePoolAsync(new CreatePoolRequest { Name = call.Get(name), Driver = call.Get(driver), Path = call.Get(path), Address = call.Get(address), Description = call.Get(description) },
                call.CancellationToken).ConfigureAwait(false);
            return call.Print(pool, (screen, p) => screen.MarkupLine($"Created pool [bold]{Markup.Escape(p.Name)}[/] ({Markup.Escape(p.Driver)}) at {HumanOutput.Escape(p.Path ?? p.Address)}."));
        });
        return command;
    }

    private static Command ShowCommand(DaemonCommandRunner runner)
    {
        var name = new Argument<string>("name") { Description = "The pool's name." };
        var command = new Command("show", "Show one pool.") { name };
        runner.SetAction(command, async call =>
        {
            var pool = await call.Client.GetPoolAsync(call.Get(name), call.CancellationToken).ConfigureAwait(false);
            return call.Print(pool, (screen, p) => screen.Write(HumanOutput.Fields(
            [
                ("Name", Markup.Escape(p.Name)),
                ("Driver", Markup.Escape(p.Driver)),
                ("Path", HumanOutput.Escape(p.Path)),
                ("Address", HumanOutput.Escape(p.Address)),
                ("Description", HumanOutput.Escape(p.Description)),
                ("Volumes", p.Volumes.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                ("Allocated", HumanOutput.Bytes(p.AllocatedBytes)),
                ("Available", HumanOutput.Bytes(p.AvailableBytes)),
                ("Capacity", HumanOutput.Bytes(p.CapacityBytes)),
                ("Created", HumanOutput.Time(p.CreatedAt)),
            ])));
        });
        return command;
    }
}
