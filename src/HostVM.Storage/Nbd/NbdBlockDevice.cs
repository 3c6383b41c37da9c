using System.Buffers;

namespace HostVM.Storage.Nbd;

/// <summary>
/// A disk that lives on an NBD server (<c>nbd://HOST:PORT/EXPORT</c>, <c>nbd+unix:///EXPORT?socket=PATH</c>). Requests go
/// out one at a time over one <see cref="NbdClient"/>, split to the server's maximum payload and aligned to its minimum
/// block. A request whose connection fails (refused, reset, timed out) is tried again on a new connection, a bounded
/// number of times with a doubling wait (<see cref="NbdClientOptions"/>), then fails with an <see cref="IOException"/>:
/// the guest gets an I/O error, the VMM never hangs, and the next request tries to reconnect again. Writes are retried
/// too: an NBD write is idempotent, so one that may or may not have landed before the drop is simply sent again. A server
/// that answers with an error, or breaks the protocol, fails that request at once (the latter also drops the connection).
/// </summary>
public sealed class NbdBlockDevice : IBlockDevice, IAllocationMap
{
    // Trim, write-zeroes and block status carry no payload, so one request may cover much more than a read may.
    private const long MaxEffectLength = 1L << 30;
    private static readonly byte[] Zeroes = new byte[1 << 20];

    private readonly NbdUri _uri;
    private readonly NbdClientOptions _options;
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _closing = new();
    private readonly int _align;
    private readonly int _maxPayload;
    private readonly bool _canFlush;
    private readonly bool _canTrim;
    private readonly bool _canZero;
    private readonly bool _canMap;
    private NbdClient? _client;
    private volatile bool _disposed;

    private NbdBlockDevice(NbdUri uri, NbdClientOptions options, NbdClient client, bool readOnly, string identifier)
    {
        _uri = uri;
        _options = options;
        _client = client;
        Length = client.Size;
        ReadOnly = readOnly || client.ReadOnly;
        Identifier = identifier;
        _align = client.MinimumBlockSize;
        _maxPayload = client.MaximumPayload;
        _canFlush = client.CanFlush;
        _canTrim = client.CanTrim;
        _canZero = client.CanWriteZeroes;
        _canMap = client.CanReportAllocation;
    }

    public long Length { get; }

    /// <summary>Asked for read-only, or the server exports it read-only (NBD_FLAG_READ_ONLY).</summary>
    public bool ReadOnly { get; }

    public string Identifier { get; }

    /// <summary>Where the export is.</summary>
    public NbdUri Uri => _uri;

    /// <summary>Whether <see cref="MapAllocation"/> comes from the server (<c>base:allocation</c>) rather than "all data".</summary>
    public bool ReportsAllocation => _canMap;

    /// <summary>Connects to the export and negotiates; the connection failing here is not retried (the caller hears at once).</summary>
    /// <exception cref="BlockDeviceException">The server cannot be reached or refused the export; the message says why.</exception>
    public static NbdBlockDevice Open(NbdUri uri, bool readOnly, string? identifier = null, NbdClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(uri);
        options ??= NbdClientOptions.Default;
        NbdClient client;
        try
        {
            client = NbdClient.Connect(uri, options);
        }
        catch (IOException e)
        {
            throw new BlockDeviceException(e.Message, uri.ToString(), e);
        }

        if (client.Size == 0)
        {
            client.Dispose();
            throw new BlockDeviceException($"NBD export {uri} is {client.AnnouncedSize} bytes: a disk needs at least one 512-byte sector.", uri.ToString());
        }

        return new NbdBlockDevice(uri, options, client, readOnly, identifier ?? RawFileBlockDevice.IdentifierFromFileName(uri.ExportName.Length > 0 ? uri.ExportName : "nbd"));
    }

    public void Read(long offset, Span<byte> destination)
    {
        CheckRange(offset, destination.Length);
        while (!destination.IsEmpty)
        {
            long start = AlignDown(offset);
            int window = (int)Math.Min(_maxPayload, AlignUp(offset + destination.Length) - start);
            int within = (int)(offset - start);
            int n = Math.Min(destination.Length, window - within);
            if (within == 0 && n == window)
            {
                Run("read", offset, destination[..n], static (c, o, d) => c.Read(o, d));
            }
            else
            {
                // Only a server whose minimum block is larger than the request's alignment gets here.
                byte[] bounce = ArrayPool<byte>.Shared.Rent(window);
                try
                {
                    Run("read", start, bounce.AsSpan(0, window), static (c, o, d) => c.Read(o, d));
                    bounce.AsSpan(within, n).CopyTo(destination);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(bounce);
                }
            }

            destination = destination[n..];
            offset += n;
        }
    }

    public void Read(long offset, IReadOnlyList<Memory<byte>> destinations)
    {
        ArgumentNullException.ThrowIfNull(destinations);
        BounceBuffer.ReadScattered(this, offset, destinations);
    }

    public void Write(long offset, IReadOnlyList<ReadOnlyMemory<byte>> sources)
    {
        ArgumentNullException.ThrowIfNull(sources);
        BounceBuffer.WriteGathered(this, offset, sources);
    }

    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        CheckWritable();
        CheckRange(offset, source.Length);
        while (!source.IsEmpty)
        {
            long start = AlignDown(offset);
            int window = (int)Math.Min(_maxPayload, AlignUp(offset + source.Length) - start);
            int within = (int)(offset - start);
            int n = Math.Min(source.Length, window - within);
            if (within == 0 && n == window)
            {
                Run("write", offset, source[..n], static (c, o, s) => c.Write(o, s));
            }
            else
            {
                // Read-modify-write of the blocks the request covers only in part.
                byte[] bounce = ArrayPool<byte>.Shared.Rent(window);
                try
                {
                    Run("read", start, bounce.AsSpan(0, window), static (c, o, d) => c.Read(o, d));
                    source[..n].CopyTo(bounce.AsSpan(within));
                    Run("write", start, (ReadOnlySpan<byte>)bounce.AsSpan(0, window), static (c, o, s) => c.Write(o, s));
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(bounce);
                }
            }

            source = source[n..];
            offset += n;
        }
    }

    public void Flush()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!ReadOnly && _canFlush)
        {
            Run("flush", 0, 0u, static (c, _, _) => c.Flush());
        }
    }

    public void Discard(long offset, long length)
    {
        CheckWritable();
        CheckRange(offset, length);

        // A trim is advice: the partly covered blocks at either end are simply kept.
        long start = AlignUp(offset), end = AlignDown(offset + length);
        if (!_canTrim)
        {
            return;
        }

        for (long at = start; at < end;)
        {
            uint n = (uint)Math.Min(end - at, AlignDown(MaxEffectLength));
            Run("trim", at, n, static (c, o, l) => c.Trim(o, l));
            at += n;
        }
    }

    public void WriteZeroes(long offset, long length, bool mayUnmap)
    {
        CheckWritable();
        CheckRange(offset, length);
        long start = AlignUp(offset), end = AlignDown(offset + length);
        if (!_canZero || start >= end)
        {
            WriteZeroBuffers(offset, length);
            return;
        }

        WriteZeroBuffers(offset, start - offset);
        bool noHole = !mayUnmap;
        for (long at = start; at < end;)
        {
            uint n = (uint)Math.Min(end - at, AlignDown(MaxEffectLength));
            Run("write-zeroes", at, n, (c, o, l) => c.WriteZeroes(o, l, noHole));
            at += n;
        }

        WriteZeroBuffers(end, offset + length - end);
    }

    /// <summary>
    /// The allocation of the range from the server's <c>base:allocation</c> context (NBD_CMD_BLOCK_STATUS); a server without
    /// it reports the whole range as data. Later issues use this for backups and migration.
    /// </summary>
    public IReadOnlyList<BlockExtent> MapAllocation(long offset, long length)
    {
        CheckRange(offset, length);
        if (length == 0)
        {
            return [];
        }

        if (!_canMap)
        {
            return [new BlockExtent(offset, length, Hole: false, Zero: false)];
        }

        long end = offset + length;
        long askFrom = AlignDown(offset);
        while (true)
        {
            uint ask = (uint)Math.Min(AlignUp(end) - askFrom, AlignDown(MaxEffectLength));
            IReadOnlyList<BlockExtent> reply = [];
            Run("block status", askFrom, ask, (c, o, l) => reply = c.BlockStatus(o, l));
            var clipped = new List<BlockExtent>(reply.Count);
            foreach (var e in reply)
            {
                long s = Math.Max(e.Offset, offset), t = Math.Min(e.End, end);
                if (s < t)
                {
                    clipped.Add(e with { Offset = s, Length = t - s });
                }
            }

            if (clipped.Count > 0)
            {
                return clipped;
            }

            // Only a reply that ended inside the aligned-down head gets here: ask again from where it ended.
            askFrom = reply[^1].End;
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _closing.Cancel();
        if (_lock.TryEnter())
        {
            try
            {
                _client?.Dispose();
                _client = null;
            }
            finally
            {
                _lock.Exit();
            }

            _closing.Dispose();
        }
        else
        {
            // A request is under way (maybe waiting for a dead server): cut its connection so it fails now.
            _client?.Abort();
        }
    }

    public override string ToString() => $"NBD export {_uri}{(ReadOnly ? " (read-only)" : string.Empty)}";

    private delegate void Operation<TArg>(NbdClient client, long offset, TArg arg)
        where TArg : allows ref struct;

    /// <summary>Runs one request, reconnecting and retrying it when its connection fails; see the class summary.</summary>
    private void Run<TArg>(string what, long offset, TArg arg, Operation<TArg> operation)
        where TArg : allows ref struct
    {
        lock (_lock)
        {
            TimeSpan delay = _options.FirstRetryDelay;
            for (int attempt = 1; ; attempt++)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                IOException failure;
                try
                {
                    operation(Connected(), offset, arg);
                    return;
                }
                catch (NbdServerErrorException)
                {
                    throw;
                }
                catch (NbdProtocolException)
                {
                    Drop();
                    throw;
                }
                catch (IOException e)
                {
                    Drop();
                    failure = e;
                }

                if (_disposed)
                {
                    throw new IOException($"NBD export {_uri} was closed while a {what} was under way.", failure);
                }

                if (attempt > _options.Retries)
                {
                    throw new IOException($"NBD export {_uri}: {what} at {offset} failed after {attempt} attempts: {failure.Message}", failure);
                }

                _closing.Token.WaitHandle.WaitOne(delay);
                delay *= 2;
            }
        }
    }

    /// <summary>The open connection, or a new one that must show the same export as the first.</summary>
    private NbdClient Connected()
    {
        if (_client is { IsBroken: false } client)
        {
            return client;
        }

        _client = null;
        NbdClient fresh;
        try
        {
            fresh = NbdClient.Connect(_uri, _options);
        }
        catch (IOException e) when (e is NbdServerErrorException or NbdProtocolException)
        {
            // The server is back but not as it was (restarting, reconfigured): worth another try like a refused connection.
            throw new IOException(e.Message, e);
        }

        if (fresh.Size != Length || fresh.MinimumBlockSize > _align || fresh.MaximumPayload < _maxPayload || (fresh.ReadOnly && !ReadOnly))
        {
            string was = $"{Length} bytes{(ReadOnly ? string.Empty : ", writable")}, blocks {_align}..{_maxPayload}";
            string now = $"{fresh.Size} bytes{(fresh.ReadOnly ? string.Empty : ", writable")}, blocks {fresh.MinimumBlockSize}..{fresh.MaximumPayload}";
            fresh.Dispose();
            throw new IOException($"NBD export {_uri} is not the disk it was after reconnecting ({was}; now {now}).");
        }

        _client = fresh;
        return fresh;
    }

    private void Drop()
    {
        _client?.Abort();
        _client = null;
    }

    private void WriteZeroBuffers(long offset, long length)
    {
        while (length > 0)
        {
            int n = (int)Math.Min(length, Zeroes.Length);
            Write(offset, Zeroes.AsSpan(0, n));
            offset += n;
            length -= n;
        }
    }

    private long AlignDown(long value) => value / _align * _align;

    private long AlignUp(long value) => (value + _align - 1) / _align * _align;

    private void CheckWritable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (ReadOnly)
        {
            throw new IOException($"NBD export {_uri} is attached read-only{(_client?.ReadOnly == true ? " (the server exports it read-only)" : string.Empty)}; writes are refused.");
        }
    }

    private void CheckRange(long offset, long length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (offset < 0 || length < 0 || offset > Length - length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"Range {offset}+{length} is outside NBD export {_uri} of {Length} bytes.");
        }
    }
}
