using System.CommandLine;
using HostVM.Vmm.Api;
using Spectre.Console;

namespace HostVM.Cli;

/// <summary>`hostvm vm bitmap ...`: a VM's dirty bitmaps, the parts of a disk written since a bitmap was made or cleared.</summary>
public static class BitmapCommands
{
    public static Command Create(DaemonCommandRunner runner)
    {
        var command = new Command("bitmap", "Manage a VM's dirty bitmaps (change tracking in its qcow2 disks, kept across clean stops; after a crash they are stale).")
        {
            ListCommand(runner),
            Change(runner, "add", "Start a bitmap: from now on it records every write.", granularity: true),
            Change(runner, "remove", "Delete a bitmap."),
            Change(runner, "clear", "Clear a bitmap (a stale one records again from now on)."),
            Change(runner, "enable", "Let a bitmap record writes again."),
            Change(runner, "disable", "Stop a bitmap recording (its bits stay)."),
            Change(runner, "merge", "Set in a bitmap every range another has set.", source: true),
            ExtentsCommand(runner),
        };
        return command;
    }

    private static Option<string> DiskOption() => new("--disk") { Description = "The disk: disk (the VM's own, the default) or volN (its Nth volume, from vol0).", DefaultValueFactory = _ => "disk" };

    private static Command ListCommand(DaemonCommandRunner runner)
    {
        var vm = new Argument<string>("vm") { Description = "The VM." };
        var disk = DiskOption();
        var command = new Command("list", "List a disk's bitmaps.") { vm, disk };
        command.Aliases.Add("ls");
        runner.SetAction(command, async call => call.PrintTable(
            await call.Client.ListBitmapsAsync(call.Get(vm), call.Get(disk), call.CancellationToken).ConfigureAwait(false),
            "No bitmaps: start one with `hostvm vm bitmap add VM NAME`.",
            ["NAME", "GRANULARITY", "RECORDING", "STALE"],
            b => [Markup.Escape(b.Name), HumanOutput.Bytes(b.GranularityBytes), b.Enabled ? "yes" : "no", b.Stale ? "[red]yes[/]" : "no"]));
        return command;
    }

    private static Command Change(DaemonCommandRunner runner, string action, string description, bool granularity = false, bool source = false)
    {
        var vm = new Argument<string>("vm") { Description = "The VM." };
        var name = new Argument<string>("name") { Description = "The bitmap's name." };
        var disk = DiskOption();
        var size = new Option<string?>("--granularity") { Description = "What one bit stands for: a power of two, e.g. 64K (the default)." };
        var from = new Option<string>("--from") { Description = "The bitmap whose ranges are added.", Required = true };
        var command = new Command(action, description) { vm, name, disk };
        if (granularity)
        {
            command.Options.Add(size);
        }

        if (source)
        {
            command.Options.Add(from);
        }

        runner.SetAction(command, async call =>
        {
            long? bytes = null;
            if (granularity && call.Get(size) is { } text)
            {
                // SizeParser reads a bare number as MiB; a granularity is given with its unit or in bytes.
                bytes = long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long plain) ? plain
                    : SizeParser.TryParse(text, out ulong parsed) && parsed <= long.MaxValue ? (long)parsed
                    : throw new UsageException($"--granularity {text}: not a size; write e.g. 64K.");
            }

            await call.Client.ChangeBitmapsAsync(call.Get(vm), call.Get(disk), new BitmapRequest
            {
                Action = action,
                Name = call.Get(name),
                GranularityBytes = bytes,
                Source = source ? call.Get(from) : null,
            }, call.CancellationToken).ConfigureAwait(false);
            return call.Say($"Bitmap [bold]{Markup.Escape(call.Get(name))}[/] of {Markup.Escape(call.Get(vm))}/{Markup.Escape(call.Get(disk))}: {action} done.");
        });
        return command;
    }

    private static Command ExtentsCommand(DaemonCommandRunner runner)
    {
        var vm = new Argument<string>("vm") { Description = "The VM." };
        var name = new Argument<string>("name") { Description = "The bitmap." };
        var disk = DiskOption();
        var command = new Command("extents", "Show the ranges of the disk a bitmap has set (written since it was made or cleared).") { vm, name, disk };
        runner.SetAction(command, async call => call.PrintTable(
            await call.Client.BitmapExtentsAsync(call.Get(vm), call.Get(disk), call.Get(name), call.CancellationToken).ConfigureAwait(false),
            "Nothing written since the bitmap was made or cleared.",
            ["OFFSET", "LENGTH"],
            e => [e.Offset.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)]));
        return command;
    }
}
