using System.CommandLine;

namespace HostVM.Vmm;

/// <summary>
/// The VMM's command line, defined once: <c>hostvm vmm</c> (the CLI) and <c>hostvm-vmm</c> (the small
/// NativeAOT executable the daemon runs per VM) take exactly these options and run <see cref="VmmProcess"/>.
/// </summary>
public static class VmmCommandLine
{
    public const string Description =
        "Run one VM in this process, controlled over a Firecracker-style HTTP API on a Unix socket; the serial console is stdout.";

    /// <summary>Adds the VMM's options to <paramref name="command"/> and makes running it run the VMM.</summary>
    public static TCommand AddTo<TCommand>(TCommand command)
        where TCommand : Command
    {
        ArgumentNullException.ThrowIfNull(command);
        var apiSock = new Option<string?>("--api-sock") { Description = "Unix socket for the control API (must not exist yet)." };
        var id = new Option<string>("--id") { Description = "The instance id GET / reports.", DefaultValueFactory = _ => "anonymous-instance" };
        var configFile = new Option<string?>("--config-file") { Description = "Configure the VM from this JSON file (the shape of GET /vm/config) and start it at once." };
        var noApi = new Option<bool>("--no-api") { Description = "Serve no API (needs --config-file)." };
        var consoleSock = new Option<string?>("--console-sock") { Description = "Also serve the serial console on this Unix socket (many clients may attach and detach)." };
        var replay = new Option<int>("--console-replay-bytes")
        {
            Description = $"How much recent output a new console-socket client gets first (1 to {SerialSocket.MaxReplayBytes}).",
            DefaultValueFactory = _ => SerialSocket.DefaultReplayBytes,
        };
        replay.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 1 or > SerialSocket.MaxReplayBytes)
            {
                r.AddError($"--console-replay-bytes: must be 1 to {SerialSocket.MaxReplayBytes}.");
            }
        });
        var serialLog = new Option<string?>("--serial-log") { Description = "Write the serial output to this file instead of stdout, rotated to FILE.1 when it reaches --serial-log-max-bytes." };
        var serialLogMax = new Option<long>("--serial-log-max-bytes")
        {
            Description = "The size at which --serial-log rotates (the disk holds at most twice this).",
            DefaultValueFactory = _ => VmmOptions.DefaultSerialLogMaxBytes,
        };
        serialLogMax.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<long>() < 4096)
            {
                r.AddError("--serial-log-max-bytes: must be at least 4096.");
            }
        });
        var exitFile = new Option<string?>("--exit-file") { Description = "Write how the VM ended (JSON) to this file." };
        var logPath = new Option<string?>("--log-path") { Description = "The VMM's log file (default: stderr)." };
        var metricsPath = new Option<string?>("--metrics-path") { Description = "Append JSON metrics lines to this file every minute." };
        var newSession = new Option<bool>("--new-session") { Description = "Start a new session (setsid), detached from the caller's terminal." };
        var seccomp = new Option<bool>("--seccomp") { Description = "Run under a seccomp allowlist (needs libseccomp2): any other system call kills the process. The daemon's jail uses it." };
        var jailPlan = new Option<string?>("--jail-plan") { Description = "Seal this process as the file says (root only, in namespaces of its own: the daemon's jail uses it)." };
        foreach (var option in new Option[] { apiSock, id, configFile, noApi, consoleSock, replay, serialLog, serialLogMax, exitFile, logPath, metricsPath, newSession, seccomp, jailPlan })
        {
            command.Options.Add(option);
        }

        command.SetAction(parse => VmmProcess.Run(new VmmOptions
        {
            ApiSocket = parse.GetValue(apiSock),
            Id = parse.GetValue(id)!,
            ConfigFile = parse.GetValue(configFile),
            NoApi = parse.GetValue(noApi),
            ConsoleSocket = parse.GetValue(consoleSock),
            ConsoleReplayBytes = parse.GetValue(replay),
            SerialLog = parse.GetValue(serialLog),
            SerialLogMaxBytes = parse.GetValue(serialLogMax),
            ExitFile = parse.GetValue(exitFile),
            LogPath = parse.GetValue(logPath),
            MetricsPath = parse.GetValue(metricsPath),
            NewSession = parse.GetValue(newSession),
            Seccomp = parse.GetValue(seccomp),
            JailPlan = parse.GetValue(jailPlan),
        }));
        return command;
    }
}
