using System.Net.Sockets;

namespace HostVM.Cli;

/// <summary>
/// The host end of the virtio console for `hostvm run --virtio-console socket=PATH`: a Unix stream
/// socket server (like QEMU's <c>-chardev socket,server=on,wait=off</c>). One client at a time gets
/// the guest's output and types its input; output while nobody is connected is dropped.
/// </summary>
public sealed class ConsoleSocket : IDisposable
{
    private readonly Socket _listener;
    private readonly string _path;
    private readonly Lock _lock = new();
    private Socket? _client;
    private Func<ReadOnlyMemory<byte>, int>? _input;

    private ConsoleSocket(Socket listener, string path)
    {
        _listener = listener;
        _path = path;
    }

    public static ConsoleSocket Listen(string path)
    {
        if (File.Exists(path) || Directory.Exists(path))
        {
            throw new DeviceOptionException($"--virtio-console socket={path}: the path exists; remove it or choose another.");
        }

        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(path));
            listener.Listen(1);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new DeviceOptionException($"--virtio-console socket={path}: cannot listen there ({e.Message}).");
        }

        return new ConsoleSocket(listener, path);
    }

    /// <summary>Starts accepting clients; their bytes go to <paramref name="input"/> (returns how many it took).</summary>
    public void Start(Func<ReadOnlyMemory<byte>, int> input)
    {
        _input = input;
        new Thread(AcceptLoop) { IsBackground = true, Name = "virtio-console socket" }.Start();
    }

    /// <summary>Guest output: to the connected client, if any.</summary>
    public void Write(ReadOnlyMemory<byte> data)
    {
        lock (_lock)
        {
            try
            {
                _client?.Send(data.Span);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                _client = null;
            }
        }
    }

    private void AcceptLoop()
    {
        var buffer = new byte[4096];
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
                _client?.Dispose();
                _client = client;
            }

            try
            {
                int n;
                while ((n = client.Receive(buffer)) > 0)
                {
                    var pending = buffer.AsMemory(0, n);
                    while (pending.Length > 0)
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
                if (_client == client)
                {
                    _client = null;
                }
            }

            client.Dispose();
        }
    }

    public void Dispose()
    {
        _listener.Dispose();
        lock (_lock)
        {
            _client?.Dispose();
        }

        File.Delete(_path);
    }
}
