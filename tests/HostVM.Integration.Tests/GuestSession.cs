using System.Text;
using System.Text.RegularExpressions;
using HostVM.Machine;

namespace HostVM.Integration.Tests;

/// <summary>
/// A Linux guest booted in-process in shell mode (guest/init's hostvm.mode=shell), driven like a user at
/// its serial console: <see cref="Run"/> types a command and waits for its exit status marker. The
/// marker's text is built by the shell (<c>$?</c>), so the typed line itself can never match it.
/// </summary>
public sealed partial class GuestSession : IDisposable
{
    private readonly StringBuilder _console = new();
    private readonly object _gate = new();
    private int _commands;

    private GuestSession(MachineConfiguration config)
    {
        Machine = VirtualMachine.Boot(config, b =>
        {
            lock (_gate)
            {
                _console.Append((char)b);
                Monitor.PulseAll(_gate);
            }
        });
    }

    public VirtualMachine Machine { get; }

    public string Console
    {
        get
        {
            lock (_gate)
            {
                return _console.ToString();
            }
        }
    }

    /// <summary>Kernel, initramfs and fw_jump from the guest build, shell mode, quiet console.</summary>
    public static MachineConfiguration Configuration(string extraCommandLine = "", ulong memory = 256 * MachineConfiguration.MiB) => new()
    {
        MemorySize = memory,
        Firmware = GuestRun.File(GuestArtifacts.Guest("fw_jump.bin")),
        Kernel = GuestRun.File(GuestArtifacts.Guest("Image")),
        Initrd = GuestRun.File(GuestArtifacts.Guest("initramfs.cpio.gz")),
        KernelCommandLine = $"console=ttyS0 quiet hostvm.mode=shell {extraCommandLine}".Trim(),
    };

    /// <summary>Boots and waits for the shell; on failure the exception carries the console.</summary>
    public static GuestSession Start(MachineConfiguration config)
    {
        var session = new GuestSession(config);
        try
        {
            session.Machine.Start();
            session.WaitFor("HOSTVM-SHELL-READY", TimeSpan.FromSeconds(120));
            return session;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>Waits until the console shows <paramref name="text"/> (from the start of the run).</summary>
    public void WaitFor(string text, TimeSpan timeout) => WaitFor(new Regex(Regex.Escape(text)), timeout, 0);

    private Match WaitFor(Regex pattern, TimeSpan timeout, int from)
    {
        var deadline = DateTime.UtcNow + timeout;
        lock (_gate)
        {
            while (true)
            {
                var m = pattern.Match(_console.ToString(from, _console.Length - from));
                if (m.Success)
                {
                    return m;
                }

                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || Machine.Exit is not null)
                {
                    throw new TimeoutException(
                        $"'{pattern}' did not appear within {timeout.TotalSeconds} s (machine: {Machine.Exit?.ToString() ?? "running"})\n"
                        + string.Join('\n', Machine.DescribeHarts().Concat(Machine.DescribeDevices()))
                        + $"\n--- console ---\n{_console}");
                }

                Monitor.Wait(_gate, left < TimeSpan.FromMilliseconds(200) ? left : TimeSpan.FromMilliseconds(200));
            }
        }
    }

    /// <summary>Runs a shell command line; returns its exit status and what it printed.</summary>
    public (int Status, string Output) Run(string command, TimeSpan? timeout = null)
    {
        int id = ++_commands;
        int from;
        lock (_gate)
        {
            from = _console.Length;
        }

        Type($"{command}; echo \"HOSTVM-DONE-$?-{id}\"\n");
        var m = WaitFor(new Regex($"HOSTVM-DONE-(\\d+)-{id}\\b"), timeout ?? TimeSpan.FromSeconds(60), from);
        string output;
        lock (_gate)
        {
            output = _console.ToString(from, m.Index);
        }

        // The shell's prompt ("# ") may come out after we noted the position: it is not the command's.
        output = PromptPrefix().Replace(output.Replace("\r", string.Empty, StringComparison.Ordinal), string.Empty);
        return (int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), output);
    }

    /// <summary>Runs a command that must succeed; returns its output.</summary>
    public string Check(string command, TimeSpan? timeout = null)
    {
        var (status, output) = Run(command, timeout);
        if (status != 0)
        {
            throw new InvalidOperationException($"guest command failed with status {status}: {command}\n--- output ---\n{output}\n--- console ---\n{Console}");
        }

        return output;
    }

    /// <summary>Types text at the console, waiting for the UART's FIFO as a person at a keyboard would.</summary>
    public void Type(string text)
    {
        var bytes = Encoding.ASCII.GetBytes(text).AsSpan();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (bytes.Length > 0)
        {
            int n = Machine.SendConsoleInput(bytes);
            bytes = bytes[n..];
            if (bytes.Length > 0)
            {
                if (DateTime.UtcNow > deadline || Machine.Exit is not null)
                {
                    throw new TimeoutException("the guest stopped reading its console");
                }

                Thread.Sleep(2);
            }
        }
    }

    /// <summary>Ends the shell (init powers off) and waits for the machine to stop.</summary>
    public MachineExit PowerOff()
    {
        Type("exit\n");
        return Machine.WaitForExit(TimeSpan.FromSeconds(60)) ?? throw new TimeoutException($"the guest did not power off\n{Console}");
    }

    public void Dispose() => Machine.Dispose();

    [GeneratedRegex("^(?:\\n?# )+")]
    private static partial Regex PromptPrefix();
}
