using System.Net;
using System.Net.WebSockets;
using System.Text;

namespace HostVM.Integration.Tests;

/// <summary>A client of the daemon's console WebSocket: collects what it is sent, types text, reports how it was closed.</summary>
public sealed class WebConsole : IDisposable
{
    private readonly ClientWebSocket _socket;
    private readonly StringBuilder _output = new();
    private readonly Lock _lock = new();
    private readonly Task _reader;
    private long _bytes;

    private WebConsole(ClientWebSocket socket)
    {
        _socket = socket;
        _reader = Task.Run(ReadAsync);
    }

    /// <summary>Attaches with <paramref name="query"/> (e.g. "mode=watch&amp;replay=4096").</summary>
    public static async Task<WebConsole> AttachAsync(DaemonUnderTest daemon, string vm, string query = "", string? token = null)
    {
        var (console, status) = await TryAttachAsync(daemon, vm, query, token);
        Assert.True(console is not null, $"attach {vm}?{query}: refused with {status}");
        return console;
    }

    /// <summary>Attaches, or returns the HTTP status the daemon refused the upgrade with.</summary>
    public static async Task<(WebConsole? Console, HttpStatusCode Status)> TryAttachAsync(DaemonUnderTest daemon, string vm, string query = "", string? token = null)
    {
        var socket = daemon.NewWebSocket(token);
        socket.Options.CollectHttpResponseDetails = true;
        try
        {
            await socket.ConnectAsync(daemon.WebSocketUri($"v1/vms/{vm}/console?{query}"), CancellationToken.None);
            return (new WebConsole(socket), socket.HttpStatusCode);
        }
        catch (WebSocketException)
        {
            var status = socket.HttpStatusCode;
            socket.Dispose();
            return (null, status);
        }
    }

    public string Output
    {
        get
        {
            lock (_lock)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Bytes received so far.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    public WebSocketCloseStatus? CloseStatus => _socket.CloseStatus;

    public string? CloseReason => _socket.CloseStatusDescription;

    private async Task ReadAsync()
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var r = await _socket.ReceiveAsync(buffer, CancellationToken.None);
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    if (_socket.State == WebSocketState.CloseReceived)
                    {
                        await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "closed", CancellationToken.None); // completes the handshake
                    }

                    return;
                }

                Interlocked.Add(ref _bytes, r.Count);
                lock (_lock)
                {
                    _output.Append(Encoding.Latin1.GetString(buffer, 0, r.Count));
                }
            }
        }
        catch (WebSocketException)
        {
        }
    }

    public Task SendAsync(string text) => SendAsync(Encoding.ASCII.GetBytes(text));

    public async Task SendAsync(byte[] data) =>
        await _socket.SendAsync(data, WebSocketMessageType.Binary, endOfMessage: true, CancellationToken.None);

    /// <summary>Waits until the output holds <paramref name="text"/>.</summary>
    public async Task WaitForAsync(string text, double seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!Output.Contains(text, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > deadline)
            {
                string output = Output;
                throw new TimeoutException($"no '{text}' on the console after {seconds} s (closed: {CloseStatus} {CloseReason}); the last of it:\n{output[Math.Max(0, output.Length - 2000)..]}");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>Waits until the daemon has closed the socket; returns its close status and reason.</summary>
    public async Task<(WebSocketCloseStatus? Status, string? Reason)> WaitClosedAsync(double seconds = 30)
    {
        await _reader.WaitAsync(TimeSpan.FromSeconds(seconds));
        return (_socket.CloseStatus, _socket.CloseStatusDescription);
    }

    /// <summary>Detaches with a normal close, as `hostvm vm console` does at Ctrl-].</summary>
    public async Task DetachAsync()
    {
        if (_socket.State == WebSocketState.Open)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "detached", timeout.Token);
        }

        await _reader.WaitAsync(TimeSpan.FromSeconds(10));
    }

    public void Dispose() => _socket.Dispose();
}
