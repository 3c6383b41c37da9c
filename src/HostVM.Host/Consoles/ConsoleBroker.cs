using System.Net.Sockets;
using System.Net.WebSockets;
using HostVM.Vmm;

namespace HostVM.Host.Consoles;

/// <summary>
/// One running VM's console for all its WebSockets: a single connection to the VMM's console socket,
/// its output kept (the last <see cref="KeptBytes"/>) and fanned out to every session, and the input of
/// the one writer typed. The VMM replays up to 1 MiB to a new connection, so a broker started after a
/// daemon restart (the VMM adopted) begins with the latest output. The broker ends when the VMM closes
/// the socket (the VM stopped): every session is closed with "the VM stopped".
/// </summary>
public sealed class ConsoleBroker : IDisposable
{
    /// <summary>The output kept in memory for replay (<c>?replay=</c> at most this).</summary>
    public const int KeptBytes = SerialSocket.MaxReplayBytes;

    /// <summary>The VMM's replay counts as arrived after this long without output (or <see cref="SettleLimit"/> in all).</summary>
    private static readonly TimeSpan SettleQuiet = TimeSpan.FromMilliseconds(100);

    private static readonly TimeSpan SettleLimit = TimeSpan.FromSeconds(2);

    private readonly Socket _upstream;
    private readonly Lock _lock = new();
    private readonly ByteRing _kept = new(KeptBytes);
    private readonly List<ConsoleSession> _sessions = [];
    private readonly SemaphoreSlim _typing = new(1, 1);
    private readonly TaskCompletionSource _settled = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Action<ConsoleBroker> _ended;
    private ConsoleSession? _writer;
    private bool _closed;

    private ConsoleBroker(string vmName, Socket upstream, Action<ConsoleBroker> ended)
    {
        VmName = vmName;
        _upstream = upstream;
        _ended = ended;
    }

    public string VmName { get; }

    /// <summary>Connects to the VMM's console socket and starts reading; <paramref name="ended"/> runs when the VMM closes it.</summary>
    public static async Task<ConsoleBroker> ConnectAsync(string vmName, string socketPath, Action<ConsoleBroker> ended)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath)).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var broker = new ConsoleBroker(vmName, socket, ended);
        _ = Task.Run(broker.ReadLoopAsync);
        _ = Task.Run(broker.SettleAsync);
        return broker;
    }

    /// <summary>Completes when the VMM's replay has arrived, so the first session's replay is the latest output and not a flood.</summary>
    public Task Settled => _settled.Task;

    private async Task SettleAsync()
    {
        var start = DateTime.UtcNow;
        long seen = -1;
        while (DateTime.UtcNow - start < SettleLimit)
        {
            await Task.Delay(SettleQuiet).ConfigureAwait(false);
            long now;
            lock (_lock)
            {
                now = _kept.Written;
            }

            if (now == seen)
            {
                break;
            }

            seen = now;
        }

        _settled.TrySetResult();
    }

    /// <summary>
    /// Adds a session (its replay first: the last <paramref name="replayBytes"/> kept). False if the VM
    /// stopped meanwhile, or if it wants to write and another session writes.
    /// </summary>
    public bool TryAttach(ConsoleSession session, int replayBytes, out string refusal)
    {
        ArgumentNullException.ThrowIfNull(session);
        lock (_lock)
        {
            if (_closed)
            {
                refusal = "the VM stopped";
                return false;
            }

            if (session.Mode == ConsoleMode.Write)
            {
                if (_writer is not null)
                {
                    refusal = "another session writes";
                    return false;
                }

                _writer = session;
            }

            if (replayBytes > 0 && _kept.Count > 0)
            {
                session.Enqueue(_kept.Tail(replayBytes));
            }

            _sessions.Add(session);
        }

        refusal = string.Empty;
        return true;
    }

    /// <summary>Whether a session writes: asked before the WebSocket upgrade, so a second writer gets a 409 (<see cref="TryAttach"/> settles a race).</summary>
    public bool HasWriter
    {
        get
        {
            lock (_lock)
            {
                return _writer is not null;
            }
        }
    }

    /// <summary>Forgets a session (it closes or ended); its writer's place is free from now on.</summary>
    public void Detach(ConsoleSession session)
    {
        lock (_lock)
        {
            _sessions.Remove(session);
            if (_writer == session)
            {
                _writer = null;
            }
        }
    }

    /// <summary>Types the writer's input at the console (one message at a time, in order).</summary>
    public async Task TypeAsync(ConsoleSession from, ReadOnlyMemory<byte> keys, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_writer != from)
            {
                return;
            }
        }

        await _typing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _upstream.SendAsync(keys, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The VMM is gone; the read loop closes every session.
        }
        finally
        {
            _typing.Release();
        }
    }

    private async Task ReadLoopAsync()
    {
        var buffer = new byte[64 * 1024];
        try
        {
            int n;
            while ((n = await _upstream.ReceiveAsync(buffer, SocketFlags.None).ConfigureAwait(false)) > 0)
            {
                var chunk = buffer.AsSpan(0, n).ToArray(); // one copy, shared by every session's queue
                lock (_lock)
                {
                    _kept.Write(chunk);
                    for (int i = _sessions.Count - 1; i >= 0; i--)
                    {
                        _sessions[i].Enqueue(chunk); // may drop a slow session, which removes it from the list
                    }
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }

        End(WebSocketCloseStatus.NormalClosure, "the VM stopped");
    }

    /// <summary>Closes every session with <paramref name="reason"/>; new sessions are refused from now on.</summary>
    public void End(WebSocketCloseStatus status, string reason)
    {
        List<ConsoleSession> sessions;
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
            sessions = [.. _sessions];
        }

        foreach (var session in sessions)
        {
            session.Close(status, reason);
        }

        _settled.TrySetResult();
        _ended(this);
    }

    public void Dispose()
    {
        End(WebSocketCloseStatus.EndpointUnavailable, "the daemon is shutting down; attach again when it is back");
        _upstream.Dispose();
        _typing.Dispose();
    }
}
