using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace HostVM.Storage.Nbd;

/// <summary>
/// Serves block devices to NBD clients (qemu-img, qemu-nbd, nbdinfo, the Linux kernel's nbd, <see cref="NbdClient"/>) on
/// a TCP endpoint or a Unix socket: fixed newstyle negotiation only, structured replies, <c>base:allocation</c> (from
/// <see cref="IAllocationMap"/> where the device has it, else everything is data). Each client is hostile until proven
/// otherwise: see <see cref="NbdServerOptions"/> for the limits. Calls into one export's device are serialised, as
/// <see cref="IBlockDevice"/> expects one caller at a time.
/// <para>
/// Use: <c>await using var server = NbdServer.Start(new IPEndPoint(IPAddress.Loopback, 10809), [new NbdExport("disk", device)]);</c>
/// then clients connect to <c>server.UriFor("disk")</c>; disposing it stops listening, closes every connection and waits
/// for requests under way to finish. The devices stay open: they belong to the caller.
/// </para>
/// </summary>
public sealed class NbdServer : IAsyncDisposable, IDisposable
{
    private readonly Socket _listener;
    private readonly Dictionary<string, ExportState> _exports;
    private readonly NbdServerOptions _options;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<NbdServerSession, Task> _sessions = new();
    private readonly string? _socketPath;
    private Task _acceptLoop = Task.CompletedTask;
    private int _disposed;

    private NbdServer(Socket listener, Dictionary<string, ExportState> exports, NbdServerOptions options, string? socketPath)
    {
        _listener = listener;
        _exports = exports;
        _options = options;
        _socketPath = socketPath;
    }

    /// <summary>Where the server listens (with the port the system chose, if port 0 was asked for).</summary>
    public EndPoint LocalEndPoint => _listener.LocalEndPoint!;

    /// <summary>Connections being served now.</summary>
    public int Connections => _sessions.Count;

    /// <summary>
    /// Listens on <paramref name="endpoint"/> (an <see cref="IPEndPoint"/>, or a <see cref="UnixDomainSocketEndPoint"/>
    /// whose file must not exist yet and is removed again on dispose) and serves <paramref name="exports"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Two exports share a name, or a name is not a valid NBD string.</exception>
    /// <exception cref="IOException">The endpoint cannot be listened on (in use, no permission).</exception>
    public static NbdServer Start(EndPoint endpoint, IEnumerable<NbdExport> exports, NbdServerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(exports);
        options ??= NbdServerOptions.Default;
        if (options.MaxConnections < 1 || options.MaxRequestBytes < 512)
        {
            throw new ArgumentException("NbdServerOptions: MaxConnections must be at least 1 and MaxRequestBytes at least 512.", nameof(options));
        }

        var table = new Dictionary<string, ExportState>(StringComparer.Ordinal);
        foreach (var export in exports)
        {
            if (export.Name.Contains('\0', StringComparison.Ordinal) || System.Text.Encoding.UTF8.GetByteCount(export.Name) > NbdProtocol.MaxString)
            {
                throw new ArgumentException($"NBD export name '{export.Name}' must have no NUL and at most {NbdProtocol.MaxString} bytes.", nameof(exports));
            }

            if (!table.TryAdd(export.Name, new ExportState(export)))
            {
                throw new ArgumentException($"Two NBD exports are named '{export.Name}'.", nameof(exports));
            }
        }

        var listener = new Socket(endpoint.AddressFamily, SocketType.Stream, endpoint is UnixDomainSocketEndPoint ? ProtocolType.Unspecified : ProtocolType.Tcp);
        try
        {
            listener.Bind(endpoint);
            listener.Listen(options.MaxConnections);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new IOException($"NBD server: cannot listen on {endpoint} ({e.SocketErrorCode}: {e.Message}); choose another address or port, or stop what uses it.", e);
        }

        var server = new NbdServer(listener, table, options, endpoint is UnixDomainSocketEndPoint unix ? unix.ToString() : null);
        server._acceptLoop = Task.Run(server.AcceptLoopAsync);
        return server;
    }

    /// <summary>The NBD URI a client uses to reach <paramref name="exportName"/> on this server.</summary>
    public string UriFor(string exportName)
    {
        ArgumentNullException.ThrowIfNull(exportName);
        string name = Uri.EscapeDataString(exportName);
        return LocalEndPoint switch
        {
            IPEndPoint ip => $"nbd://{(ip.Address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{ip.Address}]" : ip.Address.ToString())}:{ip.Port.ToString(CultureInfo.InvariantCulture)}/{name}",
            _ => $"nbd+unix:///{name}?socket={_socketPath}",
        };
    }

    /// <summary>Stops listening, closes every connection and waits for requests under way to finish.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        foreach (var session in _sessions.Keys)
        {
            session.Close();
        }

        try
        {
            await _acceptLoop.ConfigureAwait(false);
            await Task.WhenAll(_sessions.Values).ConfigureAwait(false);
        }
        finally
        {
            if (_socketPath is not null)
            {
                File.Delete(_socketPath);
            }

            _stopping.Dispose();
        }
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    internal ExportState? Find(string name) => _exports.GetValueOrDefault(name);

    internal IEnumerable<ExportState> Exports => _exports.Values;

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stopping.IsCancellationRequested)
                {
                    return;
                }

                continue; // a connection reset before it was accepted
            }

            if (_sessions.Count >= _options.MaxConnections)
            {
                // Refused before a byte is read: a flood of connections costs one socket each, briefly.
                socket.Dispose();
                continue;
            }

            var session = new NbdServerSession(this, socket, _options, _stopping.Token);

            // Listed before it starts, so a session that ends at once is not left behind in the list.
            _sessions[session] = Task.CompletedTask;
            var run = Task.Run(async () =>
            {
                try
                {
                    await session.RunAsync().ConfigureAwait(false);
                }
                finally
                {
                    _sessions.TryRemove(session, out _);
                }
            });
            _sessions.TryUpdate(session, run, Task.CompletedTask);
        }
    }

    /// <summary>An export and the lock that serialises calls into its device.</summary>
    internal sealed class ExportState(NbdExport export)
    {
        public NbdExport Export { get; } = export;

        public Lock Gate { get; } = new();

        public bool ReadOnly => Export.ReadOnly || Export.Device.ReadOnly;

        public ushort TransmissionFlags => (ushort)(NbdProtocol.FlagHasFlags | NbdProtocol.FlagSendFlush | NbdProtocol.FlagCanMultiConn
            | (ReadOnly ? NbdProtocol.FlagReadOnly : NbdProtocol.FlagSendFua | NbdProtocol.FlagSendTrim | NbdProtocol.FlagSendWriteZeroes));
    }
}
