using System.Runtime.InteropServices;
using System.Text.Json;
using HostVM.Machine;
using HostVM.Vmm.Api;

namespace HostVM.Vmm;

/// <summary>
/// <c>hostvm vmm</c>: one VM in this process, driven through the control API (or booted at once from
/// <c>--config-file</c>). The process ends when the VM does; its exit code says how.
/// </summary>
public static partial class VmmProcess
{
    public const int ExitPoweredOff = 0;
    public const int ExitBadInput = 2;
    public const int ExitGuestError = 3;

    /// <summary>Ended by SIGTERM or SIGINT (128 + 15).</summary>
    public const int ExitTerminated = 143;

    /// <summary>How error lines name this program: <c>hostvm-vmm</c> (the daemon's) or <c>hostvm vmm</c> (the CLI's).</summary>
    private static string ProgramName =>
        Path.GetFileName(Environment.ProcessPath) is "hostvm-vmm" ? "hostvm-vmm" : "hostvm vmm";

    public static int Run(VmmOptions options) => RunAsync(options).GetAwaiter().GetResult();

    private static async Task<int> RunAsync(VmmOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.JailPlan is { } plan)
        {
            try
            {
                JailEntry.Enter(plan);
            }
            catch (VmmFault e)
            {
                return Fail(e.Message);
            }
        }

        // The API and console sockets, the serial log and snapshots are this VM's owner's alone (a VMM the
        // daemon starts has this umask already; one started by hand gets it too).
        OwnerOnly.RestrictUmask();
        if (options.NewSession)
        {
            _ = setsid(); // fails only if we already lead a process group, which is fine too
        }

        if (options.Seccomp)
        {
            // Before any file, socket or guest byte is read: whatever follows runs under the allowlist.
            try
            {
                SeccompFilter.Install();
            }
            catch (VmmFault e)
            {
                return Fail(e.Message);
            }
        }

        if (options.NoApi && options.ConfigFile is null)
        {
            return Fail("--no-api needs --config-file: without the API the VM can only be configured from a file.");
        }

        if (!options.NoApi && options.ApiSocket is null)
        {
            return Fail("--api-sock PATH is required (or --no-api with --config-file).");
        }

        using var log = new VmmLog(options.Id);
        using var serial = new ConsoleSink(Console.OpenStandardOutput());
        using var vmm = new VmmController(options.Id, serial, log);
        SerialSocket? console = null;
        VmmServer? server = null;
        var terminated = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; terminated.TrySetResult(ExitTerminated); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; terminated.TrySetResult(ExitTerminated); });
        try
        {
            try
            {
                if (options.LogPath is { } logPath)
                {
                    log.Configure(logPath, VmmLogLevel.Info, showLevel: true);
                }

                if (options.SerialLog is { } serialLog)
                {
                    serial.Redirect(OpenSerialLog(serialLog, options.SerialLogMaxBytes));
                }

                if (options.ConsoleSocket is { } consolePath)
                {
                    console = SerialSocket.Listen(consolePath, replayBytes: options.ConsoleReplayBytes);
                    serial.Flushed = console.Write;
                    console.Start(data => vmm.Machine is { } vm ? vm.SendConsoleInput(data.Span) : data.Length);
                }

                if (options.MetricsPath is { } metricsPath)
                {
                    vmm.PutMetrics(new Api.Metrics { MetricsPath = metricsPath });
                }

                if (options.ConfigFile is { } file)
                {
                    try
                    {
                        vmm.Apply(ReadConfigFile(file));
                        vmm.Act(new InstanceActionInfo { ActionType = "InstanceStart" });
                    }
                    catch (VmmFault e) when (!e.Message.StartsWith("--config-file", StringComparison.Ordinal))
                    {
                        throw new VmmFault($"--config-file {file}: {e.Message}");
                    }
                }

                if (!options.NoApi)
                {
                    // Kestrel takes absolute socket paths only: a relative one is the caller's directory's.
                    server = await VmmServer.StartAsync(Path.GetFullPath(options.ApiSocket!), vmm, log).ConfigureAwait(false);
                }
            }
            catch (VmmFault e)
            {
                return Fail(e.Message);
            }

            log.Info($"ready (api {options.ApiSocket ?? "off"}, pid {Environment.ProcessId})");
            var finished = await Task.WhenAny(vmm.Exited, terminated.Task).ConfigureAwait(false);
            if (finished == terminated.Task)
            {
                log.Info("terminated by a signal");
                vmm.Machine?.Stop("terminated by a signal");
                WriteExitFile(options.ExitFile, new VmmExitReport("terminated", ExitTerminated, "the VMM was terminated by a signal", DateTimeOffset.UtcNow));
                return ExitTerminated;
            }

            var exit = await vmm.Exited.ConfigureAwait(false);
            int code = exit.Reason switch
            {
                MachineExitReason.GuestError => ExitGuestError,
                MachineExitReason.Fail => exit.ExitCode,
                _ => ExitPoweredOff,
            };
            WriteExitFile(options.ExitFile, new VmmExitReport(ReasonName(exit.Reason), code, exit.Message, DateTimeOffset.UtcNow));
            if (exit.Reason == MachineExitReason.GuestError)
            {
                log.Error(exit.Message);
                foreach (var line in vmm.Machine!.DescribeHarts())
                {
                    log.Error(line);
                }
            }

            return code;
        }
        finally
        {
            if (server is not null)
            {
                await server.DisposeAsync().ConfigureAwait(false);
            }

            console?.Dispose();
        }
    }

    private static RotatingLog OpenSerialLog(string path, long maxBytes)
    {
        try
        {
            return new RotatingLog(path, maxBytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new VmmFault($"--serial-log {path}: cannot be opened for writing ({e.Message}).");
        }
    }

    /// <summary>The exit file's reason: poweroff, reboot, guest-error, failed, stopped.</summary>
    public static string ReasonName(MachineExitReason reason) => reason switch
    {
        MachineExitReason.PowerOff => "poweroff",
        MachineExitReason.Reboot => "reboot",
        MachineExitReason.GuestError => "guest-error",
        MachineExitReason.Fail => "failed",
        _ => "stopped",
    };

    private static FullVmConfiguration ReadConfigFile(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VmmFault($"--config-file {path}: cannot be read ({e.Message}).");
        }

        try
        {
            return ApiJson.Parse(bytes, VmmJsonContext.Default.FullVmConfiguration);
        }
        catch (VmmFault e)
        {
            throw new VmmFault($"--config-file {path}: {e.Message}");
        }
    }

    private static void WriteExitFile(string? path, VmmExitReport report)
    {
        if (path is null)
        {
            return;
        }

        try
        {
            string temporary = path + ".tmp";
            File.WriteAllText(temporary, JsonSerializer.Serialize(report, VmmJsonContext.Default.VmmExitReport));
            File.Move(temporary, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"{ProgramName}: cannot write the exit file {path}: {e.Message}");
        }
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"{ProgramName}: {message}");
        return ExitBadInput;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setsid();
}
