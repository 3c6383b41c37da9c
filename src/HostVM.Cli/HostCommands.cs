using System.CommandLine;
using System.Globalization;
using Spectre.Console;

namespace HostVM.Cli;

/// <summary>`hostvm host info` and `hostvm events`: what the host has, and what happened on it.</summary>
public static class HostCommands
{
    public static Command Create(DaemonCommandRunner runner)
    {
        var info = new Command("info", "Show the host's capacity (vCPUs, memory, disk), what VMs hold of it, and the daemon's version.");
        runner.SetAction(info, async call =>
        {
            var host = await call.Client.GetHostAsync(call.CancellationToken).ConfigureAwait(false);
            return call.Print(host, (screen, h) => screen.Write(HumanOutput.Fields(
            [
                ("Host", Markup.Escape(h.Hostname)),
                ("Version", Markup.Escape(h.Version)),
                ("Data", Markup.Escape(h.DataDir)),
                ("vCPUs", $"{h.Allocated.Vcpus} of {h.Capacity.Vcpus} allocated ({h.Capacity.Cores} cores × {h.Capacity.CpuOvercommit.ToString(CultureInfo.InvariantCulture)})"),
                ("Memory", $"{HumanOutput.Mib(h.Allocated.MemoryMib)} of {HumanOutput.Mib(h.Capacity.MemoryMib)} allocated (overcommit {h.Capacity.MemoryOvercommit.ToString(CultureInfo.InvariantCulture)})"),
                ("Disk", $"{HumanOutput.Mib(h.Allocated.DiskMib)} used by VMs, {HumanOutput.Mib(h.Capacity.DiskMib)} free"),
                ("VMs", $"{h.Vms.Total}, {h.Vms.Running} running"),
                ("TLS", h.TlsFingerprint is { } fingerprint ? $"certificate SHA-256 {fingerprint}" : "no TCP listener"),
            ])));
        });
        return new Command("host", "The host the daemon runs on.") { info };
    }

    public static Command CreateEvents(DaemonCommandRunner runner)
    {
        var vm = new Option<string?>("--vm") { Description = "Only this VM's events." };
        var limit = new Option<int?>("--limit", "-n") { Description = "At most this many (the daemon's default: 100)." };
        var follow = new Option<bool>("--follow", "-f") { Description = "Print events as they happen (from now, or after --since-id) until Ctrl-C or the daemon stops." };
        var sinceId = new Option<long?>("--since-id") { Description = "With --follow: first the events after this id (each event's id is in its JSON)." };
        var command = new Command("events", "Show what happened to VMs (created, started, crashed, restarted, ...), the newest first; --follow to watch.") { vm, limit, follow, sinceId };
        runner.SetAction(command, async call =>
        {
            if (call.Get(limit) is <= 0)
            {
                throw new UsageException($"--limit {call.Get(limit)}: must be a positive number.");
            }

            if (call.Get(follow))
            {
                return await FollowAsync(call, call.Get(vm), call.Get(sinceId)).ConfigureAwait(false);
            }

            if (call.Get(sinceId) is not null)
            {
                throw new UsageException("--since-id goes with --follow.");
            }

            var events = await call.Client.ListEventsAsync(call.Get(vm), call.Get(limit), call.CancellationToken).ConfigureAwait(false);
            return call.PrintTable(
                events,
                "No events.",
                ["TIME", "VM", "EVENT", "MESSAGE"],
                e => [HumanOutput.Time(e.At), HumanOutput.Escape(e.Vm), EventType(e.Type), Markup.Escape(e.Message)]);
        });
        return command;
    }

    /// <summary>`events --follow`: a line per event (a JSON line with -o json) as the daemon streams them.</summary>
    private static async Task<int> FollowAsync(DaemonCall call, string? vm, long? sinceId)
    {
        await foreach (var e in call.Client.FollowEventsAsync(vm, sinceId, call.CancellationToken).ConfigureAwait(false))
        {
            if (call.Json)
            {
                call.Environment.Out.WriteLine(e.Json);
            }
            else
            {
                var v = e.Value;
                call.Screen.MarkupLine($"{HumanOutput.Time(v.At)}  {HumanOutput.Escape(v.Vm)}  {EventType(v.Type)}  {Markup.Escape(v.Message)}");
            }

            call.Environment.Out.Flush();
        }

        call.Environment.Error.WriteLine("hostvm: the daemon ended the event stream (it stopped, or this client fell too far behind); run it again to go on.");
        return ExitCodes.Unreachable;
    }

    private static string EventType(string type) => type switch
    {
        "crashed" or "failed" => $"[red]{Markup.Escape(type)}[/]",
        "started" or "resumed" or "restarted" or "adopted" => $"[green]{Markup.Escape(type)}[/]",
        "paused" => $"[yellow]{Markup.Escape(type)}[/]",
        _ => Markup.Escape(type),
    };
}
