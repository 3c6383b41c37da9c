using System.CommandLine;
using System.Globalization;
using HostVM.Cli.Api;
using Spectre.Console;

namespace HostVM.Cli;

/// <summary>`hostvm project ...`: tenants. Every VM, image and network belongs to one; a project's quotas cap what its VMs add up to.</summary>
public static class ProjectCommands
{
    public static Command Create(DaemonCommandRunner runner) => new("project", "Manage projects: tenants whose VMs, images and networks a project's token alone sees, with quotas.")
    {
        CreateCommand(runner),
        runner.ListCommand(
            "List the projects with what they hold against their quotas (USED/MAX).",
            (c, t) => c.ListProjectsAsync(t),
            "No projects (the daemon always has \"default\": is this token's project gone?).",
            ["NAME", "VMS", "VCPUS", "MEMORY", "DISK", "IMAGES", "NETWORKS", "DESCRIPTION"],
            project =>
            [
                Markup.Escape(project.Name),
                Used(project.Usage.Vms, project.Quotas.MaxVms, Count),
                Used(project.Usage.Vcpus, project.Quotas.MaxVcpus, Count),
                Used(project.Usage.MemoryMib, project.Quotas.MaxMemoryMib, HumanOutput.Mib),
                Used(project.Usage.DiskMib, project.Quotas.MaxDiskMib, HumanOutput.Mib),
                Count(project.Usage.Images),
                Used(project.Usage.Networks, project.Quotas.MaxNetworks, Count),
                HumanOutput.Escape(project.Description),
            ]),
        ShowCommand(runner),
        SetCommand(runner),
        runner.DeleteCommand("project", "Delete a project (it must hold no VMs, images, networks or live tokens).", (c, n, t) => c.DeleteProjectAsync(n, t)),
    };

    /// <summary>"2/5": used and the quota; just "2" when there is no limit; red when at or over it.</summary>
    public static string Used(long used, long? max, Func<long, string> format)
    {
        ArgumentNullException.ThrowIfNull(format);
        if (max is not { } limit)
        {
            return format(used);
        }

        string text = $"{format(used)}/{format(limit)}";
        return used >= limit ? $"[red]{text}[/]" : text;
    }

    private static string Count(long n) => n.ToString(CultureInfo.InvariantCulture);

    /// <summary>The quota options, as `project create` and `project set` take them.</summary>
    private sealed class QuotaOptions
    {
        public Option<string?> Vms { get; } = new("--max-vms") { Description = "At most this many VMs (running or not); none: no limit." };

        public Option<string?> Vcpus { get; } = new("--max-vcpus") { Description = "At most this many vCPUs over all its VMs; none: no limit." };

        public Option<string?> Memory { get; } = new("--max-memory") { Description = "At most this much guest RAM over all its VMs, e.g. 4G (a bare number is MiB); none: no limit." };

        public Option<string?> Disk { get; } = new("--max-disk") { Description = "At most this much VM disk over all its VMs, e.g. 20G (a bare number is MiB); none: no limit." };

        public Option<string?> Networks { get; } = new("--max-networks") { Description = "At most this many networks; none: no limit." };

        public void AddTo(Command command)
        {
            command.Options.Add(Vms);
            command.Options.Add(Vcpus);
            command.Options.Add(Memory);
            command.Options.Add(Disk);
            command.Options.Add(Networks);
        }

        public bool AnyGiven(DaemonCall call) =>
            call.Get(Vms) is not null || call.Get(Vcpus) is not null || call.Get(Memory) is not null || call.Get(Disk) is not null ||
            call.Get(Networks) is not null;

        /// <summary><paramref name="current"/> with the quotas given on the command line replaced (none: no limit).</summary>
        public ProjectQuotas Over(DaemonCall call, ProjectQuotas current) => new()
        {
            MaxVms = call.Get(Vms) is { } vms ? Count("--max-vms", vms) : current.MaxVms,
            MaxVcpus = call.Get(Vcpus) is { } vcpus ? Count("--max-vcpus", vcpus) : current.MaxVcpus,
            MaxMemoryMib = call.Get(Memory) is { } memory ? OptionValues.Quota("--max-memory", memory, size: true) : current.MaxMemoryMib,
            MaxDiskMib = call.Get(Disk) is { } disk ? OptionValues.Quota("--max-disk", disk, size: true) : current.MaxDiskMib,
            MaxNetworks = call.Get(Networks) is { } networks ? Count("--max-networks", networks) : current.MaxNetworks,
        };

        private static int? Count(string option, string text) => OptionValues.Quota(option, text, size: false) switch
        {
            null => null,
            <= int.MaxValue and var n => (int)n,
            _ => throw new UsageException($"{option} {text}: too large."),
        };
    }

    private static Command CreateCommand(DaemonCommandRunner runner)
    {
        var name = new Argument<string>("name") { Description = "The project's name: 1-63 lower-case letters, digits and '-', starting with a letter." };
        var description = new Option<string?>("--description") { Description = "A note shown with the project." };
        var quotas = new QuotaOptions();
        var command = new Command("create", "Create a project (needs the host's admin: the local socket, or an admin token of no project).") { name, description };
        quotas.AddTo(command);
        runner.SetAction(command, async call =>
        {
            var request = new CreateProjectRequest
            {
                Name = call.Get(name),
                Description = call.Get(description),
                Quotas = quotas.AnyGiven(call) ? quotas.Over(call, new ProjectQuotas()) : null,
            };
            var created = await call.Client.CreateProjectAsync(request, call.CancellationToken).ConfigureAwait(false);
            return call.Print(created, (screen, p) =>
            {
                screen.MarkupLine($"Created project [bold]{Markup.Escape(p.Name)}[/].");
                ShowProject(screen, p);
            });
        });
        return command;
    }

    private static Command ShowCommand(DaemonCommandRunner runner)
    {
        var name = new Argument<string>("name") { Description = "The project's name." };
        var command = new Command("show", "Show a project: its quotas and what it holds.") { name };
        runner.SetAction(command, async call =>
            call.Print(await call.Client.GetProjectAsync(call.Get(name), call.CancellationToken).ConfigureAwait(false), ShowProject));
        return command;
    }

    private static Command SetCommand(DaemonCommandRunner runner)
    {
        var name = new Argument<string>("name") { Description = "The project's name." };
        var description = new Option<string?>("--description") { Description = "A new note (\"\" clears it)." };
        var quotas = new QuotaOptions();
        var command = new Command("set", "Change a project's description or quotas; the quotas not given stay as they are.") { name, description };
        quotas.AddTo(command);
        runner.SetAction(command, async call =>
        {
            string project = call.Get(name);
            if (call.Get(description) is null && !quotas.AnyGiven(call))
            {
                throw new UsageException("project set: nothing to change; give --description, --max-vms, --max-vcpus, --max-memory, --max-disk or --max-networks.");
            }

            // The daemon replaces the quotas whole: start from the current ones so that --max-vms alone keeps the others.
            ProjectQuotas? changed = null;
            if (quotas.AnyGiven(call))
            {
                var current = (await call.Client.GetProjectAsync(project, call.CancellationToken).ConfigureAwait(false)).Value;
                changed = quotas.Over(call, current.Quotas);
            }

            var updated = await call.Client.UpdateProjectAsync(project, new UpdateProjectRequest { Description = call.Get(description), Quotas = changed }, call.CancellationToken).ConfigureAwait(false);
            return call.Print(updated, ShowProject);
        });
        return command;
    }

    public static void ShowProject(IAnsiConsole screen, Project project)
    {
        ArgumentNullException.ThrowIfNull(screen);
        ArgumentNullException.ThrowIfNull(project);
        var (usage, quotas) = (project.Usage, project.Quotas);
        static string Of(long used, long? max, Func<long, string> format) =>
            max is { } limit ? $"{format(used)} of {format(limit)}" : $"{format(used)} (no limit)";
        screen.Write(HumanOutput.Fields(
        [
            ("Name", Markup.Escape(project.Name)),
            ("Description", HumanOutput.Escape(project.Description)),
            ("VMs", Of(usage.Vms, quotas.MaxVms, Count)),
            ("vCPUs", Of(usage.Vcpus, quotas.MaxVcpus, Count)),
            ("Memory", Of(usage.MemoryMib, quotas.MaxMemoryMib, HumanOutput.Mib)),
            ("Disk", Of(usage.DiskMib, quotas.MaxDiskMib, HumanOutput.Mib)),
            ("Images", Count(usage.Images)),
            ("Networks", Of(usage.Networks, quotas.MaxNetworks, Count)),
            ("Created", HumanOutput.Time(project.CreatedAt)),
        ]));
    }
}
