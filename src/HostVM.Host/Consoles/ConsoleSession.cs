using System.Net.WebSockets;
using System.Threading.Channels;

namespace HostVM.Host.Consoles;

/// <summary>
/// One WebSocket attached to a VM's console. Output reaches it through a queue bounded in bytes, so a
/// client that reads too slowly is dropped (closed with a reason) instead of stalling the VM or the
/// other clients. Only its own send loop sends on the socket, so the close frame, whoever asks for it,
/// goes out in order after the data. Input is typed only for the writer; a watcher that sends is closed
/// with 1008, a message over <see cref="MaxInputMessageBytes"/> with 1009.
/// </summary>
public sealed class ConsoleSession : IDisposable
{
    /// <summary>The largest input message (keys, a pasted block) the console takes.</summary>
    public const int MaxInputMessageBytes = 64 * 1024;

    /// <summary>Output waiting for a client beyond this drops the client (above the largest replay, so a replay always fits).</summary>
    public const long MaxQueuedBytes = 2 * ConsoleBroker.KeptBytes;

    /// <summary>How long a close handshake (or a send to a client that stopped reading) may take before the socket is aborted.</summary>
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(5);

    private readonly WebSocket _socket;
    private readonly Channel<byte[]> _output = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _abort;
    private long _queued;
    private (WebSocketCloseStatus Status, string Reason)? _close;

    public ConsoleSession(WebSocket socket, ConsoleMode mode, CancellationToken requestAborted)
    {
        _socket = socket;
        Mode = mode;
        _abort = CancellationTokenSource.CreateLinkedTokenSource(requestAborted);
    }

    public ConsoleMode Mode { get; }

    /// <summary>Runs once when the session starts closing (the broker forgets it then, so its writer's place is free at once).</summary>
    public Action? Closing { get; set; }

    /// <summary>Queues output for the client (never blocks: called under the broker's lock).</summary>
    public void Enqueue(byte[] chunk)
    {
        if (Interlocked.Add(ref _queued, chunk.Length) > MaxQueuedBytes)
        {
            Close(WebSocketCloseStatus.PolicyViolation, $"too slow: more than {MaxQueuedBytes >> 20} MiB of output was waiting; attach again to continue");
            return;
        }

        _output.Writer.TryWrite(chunk);
    }

    /// <summary>Ends the session: queued output is dropped and a close frame with <paramref name="reason"/> is sent. The first reason wins.</summary>
    public void Close(WebSocketCloseStatus status, string reason)
    {
        lock (_output)
        {
            if (_close is not null)
            {
                return;
            }

            _close = (status, reason);
        }

        _output.Writer.TryComplete();
        Closing?.Invoke();
        try
        {
            _abort.CancelAfter(CloseTimeout);
        }
        catch (ObjectDisposedException)
        {
            // The session is over already.
        }
    }

    /// <summary>Runs the session until it closes; <paramref name="type"/> takes the writer's input.</summary>
    public async Task RunAsync(Func<ReadOnlyMemory<byte>, CancellationToken, Task> type)
    {
        ArgumentNullException.ThrowIfNull(type);
        var sending = SendLoopAsync();
        await ReceiveLoopAsync(type).ConfigureAwait(false);
        Close(WebSocketCloseStatus.NormalClosure, "detached");
        await sending.ConfigureAwait(false);
    }

    private async Task SendLoopAsync()
    {
        try
        {
            await foreach (var chunk in _output.Reader.ReadAllAsync(_abort.Token).ConfigureAwait(false))
            {
                if (_close is not null)
                {
                    break;
                }

                await _socket.SendAsync(chunk, WebSocketMessageType.Binary, endOfMessage: true, _abort.Token).ConfigureAwait(false);
                Interlocked.Add(ref _queued, -chunk.Length);
            }

            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived && _close is { } close)
            {
                await _socket.CloseOutputAsync(close.Status, close.Reason, _abort.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            // The client went away, or did not read for CloseTimeout after it was told to go.
        }
    }

    private async Task ReceiveLoopAsync(Func<ReadOnlyMemory<byte>, CancellationToken, Task> type)
    {
        var message = new byte[MaxInputMessageBytes];
        int length = 0;
        try
        {
            while (true)
            {
                var result = await _socket.ReceiveAsync(message.AsMemory(length), _abort.Token).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }

                if (_close is not null)
                {
                    length = 0; // closing: wait for the client's close frame, type nothing more
                    continue;
                }

                length += result.Count;
                if (!result.EndOfMessage)
                {
                    if (length == message.Length)
                    {
                        Close(WebSocketCloseStatus.MessageTooBig, $"an input message over {MaxInputMessageBytes} bytes; send keys in smaller messages");
                        length = 0;
                    }

                    continue;
                }

                if (Mode == ConsoleMode.Watch)
                {
                    Close(WebSocketCloseStatus.PolicyViolation, "read-only: attached with mode=watch, input is not typed (attach with mode=write to type)");
                }
                else if (length > 0)
                {
                    await type(message.AsMemory(0, length), _abort.Token).ConfigureAwait(false);
                }

                length = 0;
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            // The client went away, or did not answer the close in time.
        }
    }

    public void Dispose() => _abort.Dispose();
}
