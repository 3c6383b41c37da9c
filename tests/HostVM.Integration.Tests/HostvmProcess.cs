using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace HostVM.Integration.Tests;

/// <summary>
/// The `hostvm` executable run as a child process (as a user or the daemon runs it), with its output
/// collected so a test can wait for a marker; killed on Dispose if it is still running.
/// </summary>
public sealed class HostvmProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly Lock _lock = new();

    private HostvmProcess(Process process)
    {
        _process = process;
    }

    public int Id => _process.Id;

    public string Output
    {
        get
        {
            lock (_lock)
            {
                return _stdout.ToString();
            }
        }
    }

    public string Errors
    {
        get
        {
            lock (_lock)
            {
                return _stderr.ToString();
            }
        }
    }

    public bool HasExited => _process.HasExited;

    public static HostvmProcess Start(params string[] args) => Start(null, args);

    public static HostvmProcess Start(IReadOnlyDictionary<string, string>? environment, params string[] args) => Start(environment, keepInput: false, args);

    /// <summary>Starts hostvm through <paramref name="prefix"/> (e.g. <c>ip netns exec NS</c>).</summary>
    public static HostvmProcess StartThrough(IReadOnlyList<string> prefix, params string[] args) => Start(null, keepInput: false, args, prefix);

    /// <summary>Starts hostvm with its standard input a pipe the test writes to (<see cref="WriteInput"/>).</summary>
    public static HostvmProcess StartWithInput(IReadOnlyDictionary<string, string>? environment, params string[] args) => Start(environment, keepInput: true, args);

    /// <summary>
    /// Starts hostvm-vmm, the VMM compiled ahead of time, which the CLI's build puts next to hostvm.dll
    /// (HostVM.Cli.csproj); <paramref name="args"/> are those of <c>hostvm vmm</c>.
    /// </summary>
    public static HostvmProcess StartVmm(params string[] args) => Start(null, keepInput: false, args, command: [VmmExecutable()]);

    /// <summary>Starts hostvm-vmm (<see cref="StartVmm"/>) in <paramref name="directory"/>, for relative paths in <paramref name="args"/>.</summary>
    public static HostvmProcess StartVmmIn(string directory, params string[] args) =>
        Start(null, keepInput: false, args, prefix: ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", directory], command: [VmmExecutable()]);

    private static string VmmExecutable()
    {
        string executable = Path.Combine(AppContext.BaseDirectory, "hostvm-vmm");
        if (!File.Exists(executable))
        {
            throw new FileNotFoundException($"{executable} is missing: the build of src/HostVM.Cli publishes it (it needs clang and zlib1g-dev: scripts/deps.sh).", executable);
        }

        return executable;
    }

    private static HostvmProcess Start(IReadOnlyDictionary<string, string>? environment, bool keepInput, string[] args, IReadOnlyList<string>? prefix = null, IReadOnlyList<string>? command = null)
    {
        string[] argv = [.. prefix ?? [], .. command ?? ["dotnet", Path.Combine(AppContext.BaseDirectory, "hostvm.dll")]];
        var info = new ProcessStartInfo(argv[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in argv.Skip(1).Concat(args))
        {
            info.ArgumentList.Add(a);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        var process = Process.Start(info)!;
        var result = new HostvmProcess(process);
        if (!keepInput)
        {
            process.StandardInput.Close();
        }

        process.OutputDataReceived += (_, e) => result.Append(result._stdout, e.Data);
        process.ErrorDataReceived += (_, e) => result.Append(result._stderr, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return result;
    }

    /// <summary>Writes bytes to hostvm's standard input (only after <see cref="StartWithInput"/>).</summary>
    public void WriteInput(ReadOnlySpan<byte> bytes)
    {
        var input = _process.StandardInput.BaseStream;
        input.Write(bytes);
        input.Flush();
    }

    private void Append(StringBuilder to, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_lock)
        {
            to.Append(line).Append('\n');
        }
    }

    public async Task WaitForOutputAsync(string marker, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (!Output.Contains(marker, StringComparison.Ordinal))
        {
            if (watch.Elapsed > timeout || _process.HasExited)
            {
                await Task.Delay(200); // the last lines of a process that just exited
                if (Output.Contains(marker, StringComparison.Ordinal))
                {
                    return;
                }

                throw new TimeoutException($"no '{marker}' after {watch.Elapsed.TotalSeconds:F0} s (exited: {_process.HasExited}).\nstdout:\n{Tail(Output)}\nstderr:\n{Tail(Errors)}");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>Waits until something accepts connections on the Unix socket at <paramref name="path"/>.</summary>
    public async Task WaitForSocketAsync(string path, double seconds = 60)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            if (File.Exists(path))
            {
                using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await probe.ConnectAsync(new UnixDomainSocketEndPoint(path));
                    return;
                }
                catch (SocketException)
                {
                }
            }

            if (_process.HasExited || watch.Elapsed.TotalSeconds > seconds)
            {
                throw new TimeoutException($"{path} never answered (exited: {_process.HasExited}).\nstderr:\n{Tail(Errors)}");
            }

            await Task.Delay(20);
        }
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"hostvm did not exit within {timeout.TotalSeconds:F0} s.\nstdout:\n{Tail(Output)}\nstderr:\n{Tail(Errors)}");
        }

        _process.WaitForExit(); // drains the output readers
        return _process.ExitCode;
    }

    private static string Tail(string text) => text.Length > 4000 ? text[^4000..] : text;

    /// <summary>SIGKILL now (nothing gets a chance to flush on the way out), and waits until it is gone.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.WaitForExit();
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }

        _process.Dispose();
    }
}
