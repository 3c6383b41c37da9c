using System.Net.Sockets;

namespace HostVM.Vmm;

/// <summary>
/// A console on a Unix stream socket (the serial console of <c>hostvm vmm --console-sock PATH</c>, the
/// virtio console of <c>hostvm run --virtio-console socket=PATH</c>), so a supervisor or user can
/// attach and detach while the VM runs: every client gets the guest's output (first the last
/// <see cref="DefaultReplayBytes"/> of it, or what <c>--console-replay-bytes</c> says, so a new client sees
/// the prompt), and what any client sends is typed at the console. A client that does not keep up loses
/// output rather than stalling the guest.
/// </summary>
public sealed class SerialSocket : IDisposable
{
    public const int DefaultReplayBytes = 16 * 1024;

    /// <summary>The most a client is replayed (the daemon asks for this much, so it can replay up to 1 MiB itself).</summary>
    public const int MaxReplayBytes = 1024 * 1024;

    /// <summary>How long a new client may take to accept its replay before it is dropped (guest output waits meanwhile).</summary>
    private static readonly TimeSpan ReplayTimeout = TimeSpan.FromSeconds(5);

    private readonly Socket _listener;
    private readonly string _path;
    private readonly Lock _lock = new();
    private readonly List<Socket> _clients = [];
    private readonly ByteRing _replay;
    private Func<ReadOnlyMemory<byte>, int>? _input;
    private bool _disposed;

    private SerialSocket(Socket listener, string path, int replayBytes)
    {
        _listener = listener;
        _path = path;
        _replay = new ByteRing(replayBytes);
    }

    /// <summary>Binds the socket at a path that must not exist yet; new clients get the last <paramref name="replayBytes"/> of output.</summary>
    public static SerialSocket Listen(string path, string what = "--console-sock ", int replayBytes = DefaultReplayBytes)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(replayBytes);
        RefuseExisting(path, what);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(path));
            listener.Listen(8);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new VmmFault($"{what}{path}: cannot listen there ({e.Message}).");
        }

        return new SerialSocket(listener, path, replayBytes);
    }

    /// <summary>Refuses a path that exists, as Firecracker does: a live socket is another VMM's, anything else is the user's to remove.</summary>
    internal static void RefuseExisting(string path, string what)
    {
        if (!File.Exists(path) && !Directory.Exists(path))
        {
            return;
        }

        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException)
        {
            throw new VmmFault($"{what}{path}: the path exists (a socket left by a process that died?); remove it or choose another.");
        }

        throw new VmmFault($"{what}{path}: another process is listening there.");
    }

    /// <summary>Starts accepting clients; their bytes go to <paramref name="input"/> (returns how many it took).</summary>
    public void Start(Func<ReadOnlyMemory<byte>, int> input)
    {
        _input = input;
        new Thread(AcceptLoop) { IsBackground = true, Name = "console socket" }.Start();
    }

    /// <summary>Guest output, to every client (and into the replay buffer).</summary>
    public void Write(ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            _replay.Write(data);

            for (int i = _clients.Count - 1; i >= 0; i--)
            {
                try
                {
                    _clients[i].Send(data, SocketFlags.None, out var error);
                    if (error is not (SocketError.Success or SocketError.WouldBlock))
                    {
                        Drop(i);
                    }
                }
                catch (ObjectDisposedException)
                {
                    Drop(i);
                }
            }
        }
    }

    private void Drop(int index)
    {
        _clients[index].Dispose();
        _clients.RemoveAt(index);
    }

    private void AcceptLoop()
    {
        while (true)
        {
            Socket client;
            try
            {
                client = _listener.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }

            lock (_lock)
            {
                if (_disposed)
                {
                    client.Dispose();
                    return;
                }

                try
                {
                    // Blocking, under the lock, so no output slips between the replay and the live bytes;
                    // bounded in time, so a client that never reads cannot stall the guest.
                    client.SendTimeout = (int)ReplayTimeout.TotalMilliseconds;
                    client.Send(_replay.Tail(_replay.Capacity));
                }
                catch (SocketException)
                {
                    client.Dispose();
                    continue;
                }

                client.Blocking = false; // from now on a slow reader loses output instead of stalling the guest
                _clients.Add(client);
            }

            new Thread(() => ReadLoop(client)) { IsBackground = true, Name = "console client" }.Start();
        }
    }

    private void ReadLoop(Socket client)
    {
        var buffer = new byte[1024];
        try
        {
            while (true)
            {
                if (!client.Poll(TimeSpan.FromSeconds(1), SelectMode.SelectRead))
                {
                    if (_disposed)
                    {
                        return;
                    }

                    continue;
                }

                int n = client.Receive(buffer, SocketFlags.None, out var error);
                if (error == SocketError.WouldBlock)
                {
                    continue;
                }

                if (n <= 0 || error != SocketError.Success)
                {
                    break;
                }

                var pending = buffer.AsMemory(0, n);
                while (pending.Length > 0 && !_disposed)
                {
                    int taken = _input!(pending);
                    pending = pending[taken..];
                    if (pending.Length > 0)
                    {
                        Thread.Sleep(5); // the guest has not read what it was sent yet
                    }
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }

        lock (_lock)
        {
            int i = _clients.IndexOf(client);
            if (i >= 0)
            {
                Drop(i);
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            foreach (var c in _clients)
            {
                c.Dispose();
            }

            _clients.Clear();
        }

        _listener.Dispose();
        File.Delete(_path);
    }
}
