using System.CommandLine;
using System.Globalization;
using HostVM.Cli.Api;
using HostVM.Host.Metrics;
using Spectre.Console;

namespace HostVM.Cli;

/// <summary>`hostvm vm ...`: create, list, start, stop, change and delete VMs on the daemon.</summary>
public static class VmCommands
{
    private const string RateHelp = "SIZE/TIME, e.g. 10M/s or 1M/100ms; none lifts the limit";
    private const string OpsHelp = "COUNT/TIME, e.g. 500/s; none lifts the limit";

    public static Command Create(DaemonCommandRunner runner)
    {
        var vm = new Command("vm", "Create, run and manage VMs on the host daemon (`hostvm serve`).")
        {
            CreateCommand(runner),
            runner.ListCommand(
                "List the VMs on the host.",
                (c, t) => c.ListVmsAsync(t),
                "No VMs yet: create one with `hostvm vm create NAME --image IMAGE`.",
                ["NAME", "PROJECT", "STATE", "VCPUS", "MEMORY", "DISK", "IMAGE", "NETWORKS", "UP", "RESTARTS"],
                vm =>
                [
                    Markup.Escape(vm.Name),
                    HumanOutput.Escape(vm.Project),
                    HumanOutput.State(vm.State),
                    vm.Vcpus.ToString(CultureInfo.InvariantCulture),
                    HumanOutput.Mib(vm.MemoryMib),
                    HumanOutput.Mib(vm.DiskMib),
                    Markup.Escape(vm.Image),
                    HumanOutput.Escape(string.Join(", ", vm.Networks.Select(n => n.Network))),
                    vm.State is "running" or "paused" ? HumanOutput.Since(vm.StartedAt, DateTimeOffset.Now) : "-",
                    vm.Restarts.ToString(CultureInfo.InvariantCulture),
                ]),
            ShowCommand(runner),
            StartCommand(runner),
            StopCommand(runner, "stop", "Stop a VM: press its power button, and kill it if it has not powered off after --timeout seconds.", (c, n, r, t) => c.StopVmAsync(n, r, t)),
            StopCommand(runner, "restart", "Restart a VM: stop it (as `vm stop`) and start it again.", (c, n, r, t) => c.RestartVmAsync(n, r, t)),
            ActionCommand(runner, "pause", "Pause a running VM (its vCPUs stop; memory and devices stay).", (c, n, t) => c.PauseVmAsync(n, t)),
            ActionCommand(runner, "resume", "Resume a paused VM.", (c, n, t) => c.ResumeVmAsync(n, t)),
            DeleteCommand(runner),
            ConsoleCommand.Create(runner),
            StatsCommand(runner),
            BitmapCommands.Create(runner),
            DiskJobCommands.Create(runner),
            SetCommand(runner),
        };
        return vm;
    }

    private static Argument<string> NameArgument() => new("name") { Description = "The VM's name (or id)." };

    private static Option<int?> CpuCapOption() => new("--cpu-cap") { Description = "Let each vCPU use at most this percentage (1-100) of one host core; 100 lifts the cap." };

    private static Option<string?> RestartOption()
    {
        var option = new Option<string?>("--restart") { Description = "What the daemon does when the VM dies: never, on-failure (the daemon's default) or always." };
        option.AcceptOnlyFromAmong("never", "on-failure", "always");
        return option;
    }

    private static Option<string?> RateOption(string device, string kind) => new($"--{device}-{kind}")
    {
        Description = kind == "bw"
            ? $"Limit the {(device == "nic" ? "NICs' traffic" : "disk's bandwidth")}: {RateHelp}."
            : $"Limit the {(device == "nic" ? "NICs' frames" : "disk's requests")}: {OpsHelp}.",
    };

    /// <summary>--ssh-key: a key as it is, or a file of keys (one a line; blank lines and # comments skipped, as in authorized_keys).</summary>
    private static IEnumerable<string> SshKeys(string keyOrFile) =>
        keyOrFile.Contains(' ', StringComparison.Ordinal) && !File.Exists(keyOrFile)
            ? [keyOrFile]
            : ReadFile(keyOrFile, "--ssh-key").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#'));

    private static string ReadFile(string path, string option)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"{option} {path}: {e.Message}");
        }
    }

    private static Command CreateCommand(DaemonCommandRunner runner)
    {
        var name = new Argument<string>("name") { Description = "The new VM's name: 1-63 lower-case letters, digits and '-', starting with a letter." };
        var image = new Option<string?>("--image") { Description = "The image to boot (see `hostvm image list`); the VM's disk is a qcow2 overlay on the image's." };
        var cloneOf = new Option<string?>("--clone-of") { Description = "Instead of an image: a stopped VM to clone (its disk without a copy; its settings unless given here)." };
        var vcpus = new Option<int?>("--vcpus") { Description = "Virtual CPUs (the daemon's default: 1)." };
        var memory = new Option<string?>("--memory", "-m") { Description = "Guest RAM, e.g. 256M or 1G (a bare number is MiB; the daemon's default: 128M)." };
        var cpuCap = CpuCapOption();
        var cpuWeight = new Option<int?>("--cpu-weight") { Description = "Share of CPU time against other VMs when the host is busy (the daemon's default: 100)." };
        var diskSize = new Option<string?>("--disk-size") { Description = "The size of the VM's own disk (at least the image's), e.g. 1G." };
        var disks = new Option<string[]>("--disk")
        {
            Description = "Attach a volume as a further disk (vdb, vdc, ... in order): POOL/NAME (see `hostvm volume list`). Repeatable.",
            AllowMultipleArgumentsPerToken = false,
        };
        var networks = new Option<string[]>("--network")
        {
            Description = "Attach a NIC to this network: NET[,mac=52:54:00:xx:xx:xx] (see `hostvm network list`). Repeatable.",
            AllowMultipleArgumentsPerToken = false,
        };
        var restart = RestartOption();
        var diskBw = RateOption("disk", "bw");
        var diskOps = RateOption("disk", "ops");
        var nicBw = RateOption("nic", "bw");
        var nicOps = RateOption("nic", "ops");
        var balloon = new Option<bool>("--balloon") { Description = "Give the VM a memory balloon (see `vm set --balloon-mib`)." };
        var append = new Option<string?>("--append") { Description = "Kernel command line (default: the image's)." };
        var start = new Option<bool>("--start") { Description = "Start it at once (if it does not fit, nothing is created)." };
        var project = OptionValues.ProjectOption("VM");
        var userData = new Option<string?>("--user-data") { Description = "A cloud-init user-data FILE, given to the guest as it is (on a NoCloud seed disk, CIDATA)." };
        var sshKeys = new Option<string[]>("--ssh-key")
        {
            Description = "An OpenSSH public key, or a file of them (e.g. ~/.ssh/id_ed25519.pub), for --user on a cloud-init seed; repeat for more.",
            AllowMultipleArgumentsPerToken = false,
        };
        var hostname = new Option<string?>("--hostname") { Description = "The guest's host name on its cloud-init seed (default: the VM's name)." };
        var user = new Option<string?>("--user") { Description = "The user --ssh-key logs in as, with sudo (default: debian)." };
        var command = new Command("create", "Create a VM from an image.")
        {
            name, image, cloneOf, vcpus, memory, cpuCap, cpuWeight, diskSize, disks, networks, restart, diskBw, diskOps, nicBw, nicOps, balloon, append, start, project,
            userData, sshKeys, hostname, user,
        };
        command.Validators.Add(result =>
        {
            if ((result.GetValue(image) is null) == (result.GetValue(cloneOf) is null))
            {
                result.AddError("vm create: give --image IMAGE or --clone-of VM (one of them).");
            }
        });
        runner.SetAction(command, async call =>
        {
            var request = new CreateVmRequest
            {
                Name = call.Get(name),
                Image = call.Get(image),
                CloneOf = call.Get(cloneOf),
                Project = call.Get(project),
                Vcpus = call.Get(vcpus),
                MemoryMib = OptionValues.Mib("--memory", call.Get(memory)),
                CpuCapPercent = call.Get(cpuCap),
                CpuWeight = call.Get(cpuWeight),
                DiskMib = OptionValues.Mib("--disk-size", call.Get(diskSize)),
                BootArgs = call.Get(append),
                RestartPolicy = call.Get(restart),
                Networks = call.Get(networks) is { Length: > 0 } nets ? [.. nets.Select(OptionValues.Network)] : null,
                Volumes = call.Get(disks) is { Length: > 0 } volumes ? [.. volumes.Select(VolumeCommands.FullKey)] : null,
                DiskLimits = OptionValues.Limits("disk", call.Get(diskBw), call.Get(diskOps)),
                NicLimits = OptionValues.Limits("nic", call.Get(nicBw), call.Get(nicOps)),
                Balloon = call.Get(balloon) ? true : null,
                Start = call.Get(start) ? true : null,
                UserData = call.Get(userData) is { } file ? ReadFile(file, "--user-data") : null,
                SshKeys = call.Get(sshKeys) is { Length: > 0 } keys ? [.. keys.SelectMany(SshKeys)] : null,
                Hostname = call.Get(hostname),
                User = call.Get(user),
            };
            var created = await call.Client.CreateVmAsync(request, call.CancellationToken).ConfigureAwait(false);
            return call.Print(created, (screen, vm) =>
            {
                screen.MarkupLine($"Created VM [bold]{Markup.Escape(vm.Name)}[/] ({HumanOutput.State(vm.State)}).");
                ShowVm(screen, vm);
            });
        });
        return command;
    }

    private static Command ShowCommand(DaemonCommandRunner runner)
    {
        var name = NameArgument();
        var command = new Command("show", "Show everything about one VM.") { name };
        runner.SetAction(command, async call =>
            call.Print(await call.Client.GetVmAsync(call.Get(name), call.CancellationToken).ConfigureAwait(false), ShowVm));
        return command;
    }

    private static Command StartCommand(DaemonCommandRunner runner) =>
        ActionCommand(runner, "start", "Start a stopped (or failed) VM.", (c, n, t) => c.StartVmAsync(n, t));

    /// <summary>A command that takes a VM's name, posts one action and shows the state the VM is in after it.</summary>
    private static Command ActionCommand(DaemonCommandRunner runner, string verb, string description, Func<DaemonClient, string, CancellationToken, Task<DaemonResponse<Vm>>> send)
    {
        var name = NameArgument();
        var command = new Command(verb, description) { name };
        runner.SetAction(command, async call =>
            call.Print(await send(call.Client, call.Get(name), call.CancellationToken).ConfigureAwait(false), PrintState));
        return command;
    }

    private static Command StopCommand(DaemonCommandRunner runner, string verb, string description, Func<DaemonClient, string, StopVmRequest, CancellationToken, Task<DaemonResponse<Vm>>> send)
    {
        var name = NameArgument();
        var force = new Option<bool>("--force") { Description = "Kill the VM at once instead of asking the guest to power off." };
        var timeout = new Option<int?>("--timeout") { Description = "Seconds to wait for the guest to power off before killing it (the daemon's default: 30)." };
        var command = new Command(verb, description) { name, force, timeout };
        runner.SetAction(command, async call =>
        {
            if (call.Get(timeout) is <= 0)
            {
                throw new UsageException($"--timeout {call.Get(timeout)}: must be a positive number of seconds (or use --force).");
            }

            var request = new StopVmRequest { Force = call.Get(force) ? true : null, TimeoutS = call.Get(timeout) };
            return call.Print(await send(call.Client, call.Get(name), request, call.CancellationToken).ConfigureAwait(false), PrintState);
        });
        return command;
    }

    private static Command DeleteCommand(DaemonCommandRunner runner)
    {
        var name = NameArgument();
        var force = new Option<bool>("--force") { Description = "Delete it even while it runs (it is killed first)." };
        var purge = new Option<bool>("--purge") { Description = "Delete its disk too (without it, the disk is kept under the daemon's orphans/ directory)." };
        var command = new Command("delete", "Delete a VM.") { name, force, purge };
        command.Aliases.Add("rm");
        runner.SetAction(command, async call =>
        {
            string vm = call.Get(name);
            await call.Client.DeleteVmAsync(vm, call.Get(force), call.Get(purge), call.CancellationToken).ConfigureAwait(false);
            return call.Say(call.Get(purge)
                ? $"Deleted VM [bold]{Markup.Escape(vm)}[/] and its disk."
                : $"Deleted VM [bold]{Markup.Escape(vm)}[/]; its disk is kept in the daemon's orphans/ directory (--purge deletes it too).");
        });
        return command;
    }

    private static Command StatsCommand(DaemonCommandRunner runner)
    {
        var name = NameArgument();
        var history = new Option<bool>("--history") { Description = "Show the daemon's samples of the last hour (one every stats_interval_s), oldest first." };
        var command = new Command("stats", "Show what a VM uses now: MIPS, CPU, memory, disk and NIC traffic (and with --history, over the last hour).") { name, history };
        runner.SetAction(command, async call =>
        {
            if (call.Get(history))
            {
                var samples = await call.Client.GetVmStatsHistoryAsync(call.Get(name), cancellationToken: call.CancellationToken).ConfigureAwait(false);
                return call.PrintTable(samples, "No samples yet: the daemon samples running VMs every stats_interval_s.", StatsView.HistoryColumns, StatsView.HistoryRow);
            }

            return call.Print(await call.Client.GetVmStatsAsync(call.Get(name), call.CancellationToken).ConfigureAwait(false), StatsView.Show);
        });
        return command;
    }

    private static Command SetCommand(DaemonCommandRunner runner)
    {
        var name = NameArgument();
        var cpuCap = CpuCapOption();
        var diskBw = RateOption("disk", "bw");
        var diskOps = RateOption("disk", "ops");
        var nicBw = RateOption("nic", "bw");
        var nicOps = RateOption("nic", "ops");
        var balloonMib = new Option<long?>("--balloon-mib") { Description = "Inflate the balloon to this many MiB (take them from the guest); 0 gives all back." };
        var restart = RestartOption();
        var command = new Command("set", "Change a VM's limits and restart policy; a running VM gets them at once.")
        {
            name, cpuCap, diskBw, diskOps, nicBw, nicOps, balloonMib, restart,
        };
        runner.SetAction(command, async call =>
        {
            string vm = call.Get(name);
            string? diskBwText = call.Get(diskBw), diskOpsText = call.Get(diskOps), nicBwText = call.Get(nicBw), nicOpsText = call.Get(nicOps);
            bool limits = diskBwText is not null || diskOpsText is not null || nicBwText is not null || nicOpsText is not null;
            if (!limits && call.Get(cpuCap) is null && call.Get(balloonMib) is null && call.Get(restart) is null)
            {
                throw new UsageException("vm set: nothing to change; give --cpu-cap, --disk-bw, --disk-ops, --nic-bw, --nic-ops, --balloon-mib or --restart.");
            }

            if (call.Get(balloonMib) is < 0)
            {
                throw new UsageException($"--balloon-mib {call.Get(balloonMib)}: must be 0 or more.");
            }

            // A limit object replaces the old one whole: start from the VM's current limits so that
            // --disk-bw alone keeps the disk's ops limit.
            Vm? current = limits ? (await call.Client.GetVmAsync(vm, call.CancellationToken).ConfigureAwait(false)).Value : null;
            var request = new UpdateVmRequest
            {
                CpuCapPercent = call.Get(cpuCap),
                DiskLimits = OptionValues.Limits("disk", diskBwText, diskOpsText, current?.DiskLimits),
                NicLimits = OptionValues.Limits("nic", nicBwText, nicOpsText, current?.NicLimits),
                BalloonMib = call.Get(balloonMib),
                RestartPolicy = call.Get(restart),
            };
            var updated = await call.Client.UpdateVmAsync(vm, request, call.CancellationToken).ConfigureAwait(false);
            return call.Print(updated, ShowVm);
        });
        return command;
    }

    private static void PrintState(IAnsiConsole screen, Vm vm) =>
        screen.MarkupLine($"[bold]{Markup.Escape(vm.Name)}[/] is {HumanOutput.State(vm.State)}.");

    public static void ShowVm(IAnsiConsole screen, Vm vm)
    {
        ArgumentNullException.ThrowIfNull(screen);
        ArgumentNullException.ThrowIfNull(vm);
        string cpu = $"{vm.Vcpus}, weight {vm.CpuWeight}" + (vm.CpuCapPercent is { } cap ? $", capped at {cap}%" : string.Empty);
        string exit = vm.LastExit is { } e
            ? $"{Markup.Escape(e.Reason)}{(e.ExitCode is { } code ? $" (code {code})" : string.Empty)} at {HumanOutput.Time(e.At)}: {Markup.Escape(e.Message)}"
            : "-";
        var fields = new List<(string, string)>
        {
            ("Name", Markup.Escape(vm.Name)),
            ("Id", Markup.Escape(vm.Id)),
            ("Project", HumanOutput.Escape(vm.Project)),
            ("State", HumanOutput.State(vm.State)),
            ("Image", Markup.Escape(vm.Image)),
            ("vCPUs", cpu),
            ("Memory", HumanOutput.Mib(vm.MemoryMib) + (vm.Balloon ? $" (balloon {HumanOutput.Mib(vm.BalloonMib)})" : string.Empty)),
            ("Disk", $"{HumanOutput.Mib(vm.DiskMib)}{(vm.DiskFormat == "qcow2" ? $" (qcow2 overlay on its image's disk{(vm.DiskLayers.Count > 0 ? $" and {vm.DiskLayers.Count} layer(s)" : string.Empty)})" : vm.DiskMib > 0 ? " (raw)" : string.Empty)}, {HumanOutput.Limits(vm.DiskLimits)}"),
            ("Volumes", vm.Volumes.Count == 0 ? "-" : Markup.Escape(string.Join(", ", vm.Volumes))),
            ("Networks", vm.Networks.Count == 0 ? "-" : Markup.Escape(string.Join(", ", vm.Networks.Select(n => $"{n.Network} ({n.Mac})"))) + $", {HumanOutput.Limits(vm.NicLimits)}"),
            ("Boot args", HumanOutput.Escape(vm.BootArgs)),
            ("Restart", $"{Markup.Escape(vm.RestartPolicy)}, {vm.Restarts} automatic restarts"),
            ("PID", vm.Pid?.ToString(CultureInfo.InvariantCulture) ?? "-"),
            ("Started", HumanOutput.Time(vm.StartedAt)),
            ("Created", HumanOutput.Time(vm.CreatedAt)),
            ("Last exit", exit),
        };
        screen.Write(HumanOutput.Fields(fields));
    }
}
