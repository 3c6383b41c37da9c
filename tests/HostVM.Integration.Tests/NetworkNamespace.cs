using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace HostVM.Integration.Tests;

/// <summary>
/// A network namespace the test makes (<c>ip netns add</c>, as root) with only a loopback interface,
/// which also holds the addresses the test gives it; removed with every process in it on Dispose.
/// What runs inside can reach nothing outside it, so a test of what a guest must not reach cannot
/// send anything off this machine even when the code under test is wrong. (This machine's kernel has
/// no dummy-interface module, so the extra addresses sit on the namespace's loopback.) Programs enter
/// it with nsenter, which joins the network namespace only: <c>ip netns exec</c> and <c>ip -n</c> also
/// remount /sys, which fails where / is not a mount point (a chroot, as fresh-machine.sh's root is).
/// </summary>
public sealed partial class NetworkNamespace : IDisposable
{
    private const int CloneNewNet = 0x4000_0000;

    private NetworkNamespace(string name) => Name = name;

    public string Name { get; }

    /// <summary>The command prefix that runs a program inside.</summary>
    public IReadOnlyList<string> Exec => ["nsenter", $"--net=/run/netns/{Name}"];

    public static string? WhyNot() =>
        !Environment.IsPrivilegedProcess ? "making a network namespace (ip netns add) needs root; test.sh as root runs it"
        : !File.Exists("/usr/sbin/ip") && !File.Exists("/usr/bin/ip") && !File.Exists("/sbin/ip") ? "ip (iproute2) is missing: scripts/deps.sh installs it"
        : null;

    public static NetworkNamespace Create(params string[] addresses)
    {
        var ns = new NetworkNamespace("hvt-" + Guid.NewGuid().ToString("N")[..10]);
        Run(["ip", "netns", "add", ns.Name]);
        try
        {
            Run([.. ns.Exec, "ip", "link", "set", "lo", "up"]);
            foreach (string address in addresses)
            {
                Run([.. ns.Exec, "ip", "addr", "add", address, "dev", "lo"]);
            }
        }
        catch
        {
            ns.Dispose();
            throw;
        }

        return ns;
    }

    /// <summary>A process inside, with its output collected; the caller disposes it.</summary>
    public Process Start(string program, params string[] args)
    {
        var info = new ProcessStartInfo(Exec[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in (string[])[.. Exec.Skip(1), program, .. args])
        {
            info.ArgumentList.Add(a);
        }

        return Process.Start(info)!;
    }

    /// <summary>
    /// A TCP connection made from inside: a thread of its own joins the namespace (setns acts on the
    /// calling thread only), makes the socket there and connects; the socket stays in the namespace.
    /// </summary>
    public Task<Stream> ConnectAsync(DnsEndPoint endpoint)
    {
        var done = new TaskCompletionSource<Stream>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                using var handle = File.OpenHandle($"/run/netns/{Name}");
                if (SetNs((int)handle.DangerousGetHandle(), CloneNewNet) != 0)
                {
                    throw new IOException($"setns into {Name}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
                }

                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                socket.Connect(IPAddress.Parse(endpoint.Host), endpoint.Port);
                done.SetResult(new NetworkStream(socket, ownsSocket: true));
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        });
        thread.Start();
        return done.Task;
    }

    public void Dispose()
    {
        using (var pids = Process.Start(new ProcessStartInfo("ip", ["netns", "pids", Name]) { RedirectStandardOutput = true, RedirectStandardError = true })!)
        {
            foreach (string pid in pids.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                DaemonUnderTest.ProcessKill(int.Parse(pid, System.Globalization.CultureInfo.InvariantCulture), 9);
            }

            pids.WaitForExit();
        }

        using (var delete = Process.Start(new ProcessStartInfo("ip", ["netns", "del", Name]) { RedirectStandardError = true })!)
        {
            delete.WaitForExit();
        }

        // ip netns add made /run/netns a mount point of its own; with no namespace left in it, take that
        // back too, so the test leaves the machine's mounts as it found them (a chroot's root can then
        // be removed). The next ip netns add makes it again.
        if (Directory.Exists("/run/netns") && !Directory.EnumerateFileSystemEntries("/run/netns").Any())
        {
            using var unmount = Process.Start(new ProcessStartInfo("umount", ["/run/netns"]) { RedirectStandardError = true })!;
            unmount.WaitForExit();
        }
    }

    private static void Run(string[] command)
    {
        using var process = Process.Start(new ProcessStartInfo(command[0], command[1..]) { RedirectStandardError = true })!;
        string error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{string.Join(' ', command)}: {error}");
        }
    }

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(int fd, int nsType);
}
