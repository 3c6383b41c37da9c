using System.CommandLine;
using HostVM.Host.Api;
using Spectre.Console;

namespace HostVM.Cli;

/// <summary>
/// `hostvm vm disk ...`: block jobs on a VM's own qcow2 disk, while it runs or not. A job waits to its end (with a progress
/// bar on a terminal) unless --no-wait; its exit code says how it ended.
/// </summary>
public static class DiskJobCommands
{
    public static Command Create(DaemonCommandRunner runner) => new("disk", "Block jobs on a VM's disk: external snapshots, commit and stream, live or stopped.")
    {
        Start(runner, "snapshot", "The disk so far becomes a read-only layer; a new, empty overlay takes the writes (instant)."),
        Start(runner, "commit", "Merge the overlay down into the layer below it (one of the VM's own snapshots), which then takes the writes."),
        Start(runner, "stream", "Pull the base image and every layer up into the overlay, which then stands alone (no backing file)."),
        Show(runner),
        Cancel(runner),
    };

    private static Option<string> DiskOption() => new("--disk") { Description = "The disk (block jobs run on the VM's own: disk).", DefaultValueFactory = _ => "disk" };

    private static Command Start(DaemonCommandRunner runner, string type, string description)
    {
        var vm = new Argument<string>("vm") { Description = "The VM." };
        var disk = DiskOption();
        var noWait = new Option<bool>("--no-wait") { Description = "Return once the job started; follow it with `hostvm vm disk job VM`." };
        var command = new Command(type, description) { vm, disk, noWait };
        runner.SetAction(command, async call =>
        {
            string name = call.Get(vm), id = call.Get(disk);
            var response = await call.Client.StartDiskJobAsync(name, id, type, call.CancellationToken).ConfigureAwait(false);
            if (!call.Get(noWait) && response.Value.State == "running")
            {
                response = await WaitAsync(call, name, id, response.Value).ConfigureAwait(false);
            }

            call.Print(response, (screen, job) => screen.MarkupLine(Describe(job)));
            return response.Value.State is "completed" or "running" ? ExitCodes.Ok : ExitCodes.Refused;
        });
        return command;
    }

    private static Command Show(DaemonCommandRunner runner)
    {
        var vm = new Argument<string>("vm") { Description = "The VM." };
        var disk = DiskOption();
        var command = new Command("job", "Show the last block job on a VM's disk and its progress.") { vm, disk };
        runner.SetAction(command, async call => call.Print(
            await call.Client.DiskJobAsync(call.Get(vm), call.Get(disk), call.CancellationToken).ConfigureAwait(false),
            (screen, job) => screen.MarkupLine(Describe(job))));
        return command;
    }

    private static Command Cancel(DaemonCommandRunner runner)
    {
        var vm = new Argument<string>("vm") { Description = "The VM." };
        var disk = DiskOption();
        var command = new Command("cancel", "Cancel a running commit or stream (what it copied stays; the disk reads the same).") { vm, disk };
        runner.SetAction(command, async call => call.Print(
            await call.Client.CancelDiskJobAsync(call.Get(vm), call.Get(disk), call.CancellationToken).ConfigureAwait(false),
            (screen, job) => screen.MarkupLine($"Cancelling the {job.Type} job on {Markup.Escape(job.Vm)}/{Markup.Escape(job.Disk)}.")));
        return command;
    }

    private static async Task<Api.DaemonResponse<DiskJobView>> WaitAsync(DaemonCall call, string vm, string disk, DiskJobView started)
    {
        async Task<Api.DaemonResponse<DiskJobView>> Poll(Action<long> report)
        {
            while (true)
            {
                await Task.Delay(250, call.CancellationToken).ConfigureAwait(false);
                var now = await call.Client.DiskJobAsync(vm, disk, call.CancellationToken).ConfigureAwait(false);
                report(now.Value.DoneBytes);
                if (now.Value.Id != started.Id || now.Value.State != "running")
                {
                    return now;
                }
            }
        }

        if (!call.Environment.ErrorIsTerminal || call.Json)
        {
            return await Poll(_ => { }).ConfigureAwait(false);
        }

        var stderr = HumanOutput.CreateConsole(call.Environment.Error, isTerminal: true);
        return await stderr.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn())
            .StartAsync(async context =>
            {
                var bar = context.AddTask(Markup.Escape($"{started.Type} {vm}/{disk}"), maxValue: Math.Max(1, started.TotalBytes));
                return await Poll(done => bar.Value = done).ConfigureAwait(false);
            }).ConfigureAwait(false);
    }

    private static string Describe(DiskJobView job) =>
        $"{job.Type} on {Markup.Escape(job.Vm)}/{Markup.Escape(job.Disk)}: " + job.State switch
        {
            "completed" => "[green]completed[/]" + (job.Layer is { } layer ? $" (the disk so far is layer {Markup.Escape(layer)})" : string.Empty),
            "running" => $"running, {HumanOutput.Bytes(job.DoneBytes)} of {HumanOutput.Bytes(job.TotalBytes)}",
            "failed" => $"[red]failed[/]: {Markup.Escape(job.Error ?? "no reason given")}",
            var other => other,
        };
}
