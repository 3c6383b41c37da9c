using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace HostVM.Storage.Tests.Nbd;

/// <summary>
/// An NBD server from Debian (qemu-nbd, qemu-storage-daemon, nbdkit) run for one test: started, waited for until it
/// accepts connections, stopped with SIGTERM (so it flushes) on dispose. A missing tool skips the test.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal sealed partial class NbdPeer : IDisposable
{
    private readonly Process _process;
    private readonly Task<string> _errors;

    private NbdPeer(Process process, string uri)
    {
        _process = process;
        Uri = uri;
        _errors = process.StandardError.ReadToEndAsync();
        _ = process.StandardOutput.ReadToEndAsync();
    }

    /// <summary>The URI of the export the peer serves.</summary>
    public string Uri { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>A TCP port nobody listens on right now.</summary>
    public static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>Starts <paramref name="tool"/>; <paramref name="uri"/> is where it will serve (its socket or port).</summary>
    public static NbdPeer Start(string tool, string uri, params string[] args)
    {
        var info = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args)
        {
            info.ArgumentList.Add(a);
        }

        Process process;
        try
        {
            process = Process.Start(info)!;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            Assert.Skip($"{tool} is not installed (Debian: {(tool.StartsWith("qemu", StringComparison.Ordinal) ? "qemu-utils" : "nbdkit")}, which scripts/deps.sh installs)");
            throw;
        }

        var peer = new NbdPeer(process, uri);
        peer.WaitUntilListening();
        return peer;
    }

    /// <summary>Kills the peer at once (SIGKILL), as a crash or a pulled cable would.</summary>
    public void Kill()
    {
        _process.Kill();
        _process.WaitForExit();
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _ = SendSignal(_process.Id, 15);
            if (!_process.WaitForExit(10_000))
            {
                _process.Kill();
                _process.WaitForExit();
            }
        }

        _process.Dispose();
    }

    private void WaitUntilListening()
    {
        var parsed = HostVM.Storage.Nbd.NbdUri.Parse(Uri);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"the NBD peer exited ({_process.ExitCode}) before listening: {_errors.Result}");
            }

            try
            {
                using var socket = parsed.SocketPath is { } path
                    ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
                    : new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                socket.Connect(parsed.SocketPath is { } p ? new UnixDomainSocketEndPoint(p) : new IPEndPoint(IPAddress.Parse(parsed.Host!), parsed.Port));
                return;
            }
            catch (SocketException)
            {
                Thread.Sleep(50);
            }
        }

        throw new InvalidOperationException("the NBD peer did not listen within 20 s");
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);
}
