using System.CommandLine;
using HostVM.Cli.Api;
using Spectre.Console;

namespace HostVM.Cli;

/// <summary>`hostvm audit`: who changed what, from where, and how it ended; the newest first.</summary>
public static class AuditCommand
{
    public static Command Create(DaemonCommandRunner runner)
    {
        var since = new Option<string?>("--since") { Description = "Only calls at or after this: how long ago (30m, 1h, 2d) or a date and time (2026-01-31T10:00; local unless it ends in Z or an offset)." };
        var until = new Option<string?>("--until") { Description = "Only calls at or before this (written as --since)." };
        var project = new Option<string?>("--project") { Description = "Only calls on this project's objects." };
        var obj = new Option<string?>("--object") { Description = "Only calls on this object: KIND/NAME, e.g. vm/web1, image/alpine, network/lan, token/ID, project/NAME." };
        var vm = new Option<string?>("--vm") { Description = "Only calls on this VM (the same as --object vm/NAME)." };
        var who = new Option<string?>("--who") { Description = "Only calls by this token id (\"local\": the owner, through the daemon's Unix socket)." };
        var limit = new Option<int?>("--limit", "-n") { Description = "At most this many (the daemon's default: 100)." };
        var command = new Command("audit", "Show the audit log: every call that changed something (or tried to), the newest first; needs an admin.")
        {
            since, until, project, obj, vm, who, limit,
        };
        runner.SetAction(command, async call =>
        {
            if (call.Get(limit) is <= 0)
            {
                throw new UsageException($"--limit {call.Get(limit)}: must be a positive number.");
            }

            if (call.Get(vm) is not null && call.Get(obj) is not null)
            {
                throw new UsageException("--vm NAME is --object vm/NAME: give one of them.");
            }

            var now = DateTimeOffset.Now;
            string? target = call.Get(vm) is { } name ? $"vm/{name}" : call.Get(obj);
            var entries = await call.Client.ListAuditAsync(
                OptionValues.Time("--since", call.Get(since), now), OptionValues.Time("--until", call.Get(until), now),
                call.Get(project), target, call.Get(who), call.Get(limit), call.CancellationToken).ConfigureAwait(false);
            return call.PrintTable(
                entries,
                "No audit entries match.",
                ["AT", "WHO", "ROLE", "PROJECT", "FROM", "ACTION", "OBJECT", "STATUS"],
                Row);
        });
        return command;
    }

    private static string[] Row(AuditEntry e) =>
    [
        HumanOutput.Time(e.At),
        Markup.Escape(e.Who),
        HumanOutput.Escape(e.Role),
        HumanOutput.Escape(e.Project),
        Markup.Escape(e.Remote),
        Markup.Escape(e.Action),
        HumanOutput.Escape(e.Object),
        Status(e),
    ];

    /// <summary>The HTTP status, green when it succeeded, red with the reason when it was refused or failed.</summary>
    public static string Status(AuditEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        string code = entry.Status.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return entry.Status is >= 200 and < 400
            ? $"[green]{code}[/]"
            : $"[red]{code}[/]{(string.IsNullOrEmpty(entry.Detail) ? string.Empty : " " + Markup.Escape(entry.Detail))}";
    }
}
