using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace HostVM.Storage.Nbd;

/// <summary>
/// One client of an <see cref="NbdServer"/>: the fixed newstyle negotiation, then requests one at a time. Whatever the
/// client sends is checked before it is acted on; a request the protocol allows but the export cannot do gets an error
/// reply, and anything that leaves the stream out of step (a bad magic, a payload too large to skip) closes the
/// connection. Data moves in pieces of at most <see cref="Piece"/> bytes, so a client costs the server one such buffer.
/// </summary>
internal sealed class NbdServerSession
{
    private const int Piece = 1 << 20;
    private const int MaxOptionLength = 64 * 1024;
    private const int MaxExtentsPerReply = 64 * 1024;
    private const uint AllocationContextId = 1;

    private readonly NbdServer _server;
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly NbdServerOptions _options;
    private readonly CancellationTokenSource _cancel;
    private readonly byte[] _header = new byte[64];
    private bool _noZeroes;
    private bool _structured;
    private string? _allocationExport;

    public NbdServerSession(NbdServer server, Socket socket, NbdServerOptions options, CancellationToken stopping)
    {
        _server = server;
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _options = options;
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(stopping);
    }

    private CancellationToken Token => _cancel.Token;

    /// <summary>Ends the session from outside (the server stops): its pending socket call fails.</summary>
    public void Close()
    {
        try
        {
            _cancel.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Already over.
        }

        _socket.Dispose();
    }

    public async Task RunAsync()
    {
        try
        {
            _cancel.CancelAfter(_options.HandshakeTimeout);
            var export = await NegotiateAsync().ConfigureAwait(false);
            if (export is not null)
            {
                _cancel.CancelAfter(Timeout.InfiniteTimeSpan);
                await TransmitAsync(export).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or ProtocolViolation)
        {
            // The client went away, stalled, or broke the protocol: this connection ends, the server goes on.
        }
        finally
        {
            _stream.Dispose();
            _cancel.Dispose();
        }
    }

    private async Task<NbdServer.ExportState?> NegotiateAsync()
    {
        BinaryPrimitives.WriteUInt64BigEndian(_header, NbdProtocol.InitMagic);
        BinaryPrimitives.WriteUInt64BigEndian(_header.AsSpan(8), NbdProtocol.OptionMagic);
        BinaryPrimitives.WriteUInt16BigEndian(_header.AsSpan(16), NbdProtocol.FlagFixedNewstyle | NbdProtocol.FlagNoZeroes);
        await _stream.WriteAsync(_header.AsMemory(0, 18), Token).ConfigureAwait(false);
        await _stream.ReadExactlyAsync(_header.AsMemory(0, 4), Token).ConfigureAwait(false);
        uint clientFlags = BinaryPrimitives.ReadUInt32BigEndian(_header);
        if ((clientFlags & ~(NbdProtocol.ClientFlagFixedNewstyle | NbdProtocol.ClientFlagNoZeroes)) != 0)
        {
            throw new ProtocolViolation(); // the spec says drop a client that sets flags it does not know
        }

        _noZeroes = (clientFlags & NbdProtocol.ClientFlagNoZeroes) != 0;
        while (true)
        {
            await _stream.ReadExactlyAsync(_header.AsMemory(0, 16), Token).ConfigureAwait(false);
            if (BinaryPrimitives.ReadUInt64BigEndian(_header) != NbdProtocol.OptionMagic)
            {
                throw new ProtocolViolation();
            }

            uint option = BinaryPrimitives.ReadUInt32BigEndian(_header.AsSpan(8));
            uint length = BinaryPrimitives.ReadUInt32BigEndian(_header.AsSpan(12));
            if (length > MaxOptionLength)
            {
                throw new ProtocolViolation(); // no option is that long; reading it would only cost memory
            }

            byte[] data = new byte[length];
            await _stream.ReadExactlyAsync(data, Token).ConfigureAwait(false);
            switch (option)
            {
                case NbdProtocol.OptExportName:
                    return await ExportNameAsync(data).ConfigureAwait(false);
                case NbdProtocol.OptAbort:
                    await ReplyAsync(option, NbdProtocol.RepAck).ConfigureAwait(false);
                    return null;
                case NbdProtocol.OptList:
                    await ListAsync(data).ConfigureAwait(false);
                    break;
                case NbdProtocol.OptInfo:
                case NbdProtocol.OptGo:
                    if (await InfoAsync(option, data).ConfigureAwait(false) is { } chosen && option == NbdProtocol.OptGo)
                    {
                        return chosen;
                    }

                    break;
                case NbdProtocol.OptStructuredReply when data.Length != 0:
                    await ReplyErrorAsync(option, NbdProtocol.RepErrInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data").ConfigureAwait(false);
                    break;
                case NbdProtocol.OptStructuredReply:
                    _structured = true;
                    await ReplyAsync(option, NbdProtocol.RepAck).ConfigureAwait(false);
                    break;
                case NbdProtocol.OptListMetaContext:
                case NbdProtocol.OptSetMetaContext:
                    await MetaContextAsync(option, data).ConfigureAwait(false);
                    break;
                default:
                    // STARTTLS included: this server speaks no TLS (NOTLS mode), which the spec answers with UNSUP.
                    await ReplyErrorAsync(option, NbdProtocol.RepErrUnsup, $"{NbdProtocol.OptionName(option)} is not supported by HostVM's NBD server").ConfigureAwait(false);
                    break;
            }
        }
    }

    private async Task<NbdServer.ExportState?> ExportNameAsync(byte[] data)
    {
        if (!TryString(data, out string name) || _server.Find(name) is not { } export)
        {
            return null; // NBD_OPT_EXPORT_NAME has no way to say no but closing
        }

        var reply = new byte[_noZeroes ? 10 : 10 + 124];
        BinaryPrimitives.WriteUInt64BigEndian(reply, (ulong)export.Export.Device.Length);
        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(8), export.TransmissionFlags);
        await _stream.WriteAsync(reply, Token).ConfigureAwait(false);
        if (_allocationExport != name)
        {
            _allocationExport = null;
        }

        return export;
    }

    private async Task ListAsync(byte[] data)
    {
        if (data.Length != 0)
        {
            await ReplyErrorAsync(NbdProtocol.OptList, NbdProtocol.RepErrInvalid, "NBD_OPT_LIST takes no data").ConfigureAwait(false);
            return;
        }

        foreach (var export in _server.Exports)
        {
            byte[] name = Encoding.UTF8.GetBytes(export.Export.Name);
            var reply = new byte[4 + name.Length];
            BinaryPrimitives.WriteUInt32BigEndian(reply, (uint)name.Length);
            name.CopyTo(reply, 4);
            await ReplyAsync(NbdProtocol.OptList, NbdProtocol.RepServer, reply).ConfigureAwait(false);
        }

        await ReplyAsync(NbdProtocol.OptList, NbdProtocol.RepAck).ConfigureAwait(false);
    }

    /// <summary>NBD_OPT_INFO or NBD_OPT_GO: the export if it was found and described.</summary>
    private async Task<NbdServer.ExportState?> InfoAsync(uint option, byte[] data)
    {
        var reader = new OptionReader(data);
        if (!reader.TryString(out string name) || !reader.TryU16(out ushort count) || reader.Remaining != count * 2)
        {
            await ReplyErrorAsync(option, NbdProtocol.RepErrInvalid, "malformed request").ConfigureAwait(false);
            return null;
        }

        var wanted = new HashSet<ushort>();
        for (int i = 0; i < count; i++)
        {
            reader.TryU16(out ushort info);
            wanted.Add(info);
        }

        if (_server.Find(name) is not { } export)
        {
            await ReplyErrorAsync(option, NbdProtocol.RepErrUnknown, $"no export named '{name}'").ConfigureAwait(false);
            return null;
        }

        var info12 = new byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(info12, NbdProtocol.InfoExport);
        BinaryPrimitives.WriteUInt64BigEndian(info12.AsSpan(2), (ulong)export.Export.Device.Length);
        BinaryPrimitives.WriteUInt16BigEndian(info12.AsSpan(10), export.TransmissionFlags);
        await ReplyAsync(option, NbdProtocol.RepInfo, info12).ConfigureAwait(false);
        if (wanted.Contains(NbdProtocol.InfoBlockSize))
        {
            var sizes = new byte[14];
            BinaryPrimitives.WriteUInt16BigEndian(sizes, NbdProtocol.InfoBlockSize);
            BinaryPrimitives.WriteUInt32BigEndian(sizes.AsSpan(2), 1);
            BinaryPrimitives.WriteUInt32BigEndian(sizes.AsSpan(6), 4096);
            BinaryPrimitives.WriteUInt32BigEndian(sizes.AsSpan(10), (uint)Math.Max(_options.MaxRequestBytes, 4096));
            await ReplyAsync(option, NbdProtocol.RepInfo, sizes).ConfigureAwait(false);
        }

        if (wanted.Contains(NbdProtocol.InfoName))
        {
            await ReplyAsync(option, NbdProtocol.RepInfo, InfoString(NbdProtocol.InfoName, export.Export.Name)).ConfigureAwait(false);
        }

        if (wanted.Contains(NbdProtocol.InfoDescription) && export.Export.Description is { } description)
        {
            await ReplyAsync(option, NbdProtocol.RepInfo, InfoString(NbdProtocol.InfoDescription, description)).ConfigureAwait(false);
        }

        await ReplyAsync(option, NbdProtocol.RepAck).ConfigureAwait(false);
        if (option == NbdProtocol.OptGo && _allocationExport != name)
        {
            _allocationExport = null;
        }

        return export;
    }

    private async Task MetaContextAsync(uint option, byte[] data)
    {
        var reader = new OptionReader(data);
        var queries = new List<string>();
        uint count = 0;
        bool valid = reader.TryString(out string name) && reader.TryU32(out count) && count <= 1024;
        for (uint i = 0; valid && i < count; i++)
        {
            valid = reader.TryString(out string query);
            queries.Add(query);
        }

        if (!valid || reader.Remaining != 0)
        {
            await ReplyErrorAsync(option, NbdProtocol.RepErrInvalid, "malformed request").ConfigureAwait(false);
            return;
        }

        bool set = option == NbdProtocol.OptSetMetaContext;
        if (set)
        {
            _allocationExport = null; // a SET replaces the selection, even when it fails
            if (!_structured)
            {
                await ReplyErrorAsync(option, NbdProtocol.RepErrInvalid, "negotiate structured replies first").ConfigureAwait(false);
                return;
            }
        }

        if (_server.Find(name) is null)
        {
            await ReplyErrorAsync(option, NbdProtocol.RepErrUnknown, $"no export named '{name}'").ConfigureAwait(false);
            return;
        }

        bool match = set
            ? queries.Contains(NbdProtocol.AllocationContext)
            : queries.Count == 0 || queries.Any(q => q is "base:" or NbdProtocol.AllocationContext);
        if (match)
        {
            byte[] context = Encoding.UTF8.GetBytes(NbdProtocol.AllocationContext);
            var reply = new byte[4 + context.Length];
            BinaryPrimitives.WriteUInt32BigEndian(reply, set ? AllocationContextId : 0);
            context.CopyTo(reply, 4);
            await ReplyAsync(option, NbdProtocol.RepMetaContext, reply).ConfigureAwait(false);
            if (set)
            {
                _allocationExport = name;
            }
        }

        await ReplyAsync(option, NbdProtocol.RepAck).ConfigureAwait(false);
    }

    private async Task TransmitAsync(NbdServer.ExportState export)
    {
        bool allocation = _allocationExport == export.Export.Name;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(Piece);
        try
        {
            while (true)
            {
                // Waiting for the next request has no deadline; once it has begun, the rest must come in time.
                await _stream.ReadExactlyAsync(_header.AsMemory(0, 1), Token).ConfigureAwait(false);
                _cancel.CancelAfter(_options.IoTimeout);
                await _stream.ReadExactlyAsync(_header.AsMemory(1, 27), Token).ConfigureAwait(false);
                if (BinaryPrimitives.ReadUInt32BigEndian(_header) != NbdProtocol.RequestMagic)
                {
                    throw new ProtocolViolation();
                }

                var request = new Request(
                    Flags: BinaryPrimitives.ReadUInt16BigEndian(_header.AsSpan(4)),
                    Type: BinaryPrimitives.ReadUInt16BigEndian(_header.AsSpan(6)),
                    Cookie: BinaryPrimitives.ReadUInt64BigEndian(_header.AsSpan(8)),
                    Offset: BinaryPrimitives.ReadUInt64BigEndian(_header.AsSpan(16)),
                    Length: BinaryPrimitives.ReadUInt32BigEndian(_header.AsSpan(24)));
                if (request.Type == NbdProtocol.CmdDisc)
                {
                    return;
                }

                await HandleAsync(export, request, allocation, buffer).ConfigureAwait(false);
                _cancel.CancelAfter(Timeout.InfiniteTimeSpan);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task HandleAsync(NbdServer.ExportState export, Request r, bool allocation, byte[] buffer)
    {
        IBlockDevice device = export.Export.Device;
        bool inRange = r.Offset <= (ulong)device.Length && r.Length <= (ulong)device.Length - r.Offset;
        long offset = (long)Math.Min(r.Offset, long.MaxValue);
        switch (r.Type)
        {
            case NbdProtocol.CmdRead:
                if ((r.Flags & ~(NbdProtocol.CmdFlagFua | NbdProtocol.CmdFlagDf)) != 0 || r.Length > _options.MaxRequestBytes || !inRange)
                {
                    await ErrorAsync(r, NbdProtocol.EINVAL, r.Length > _options.MaxRequestBytes ? $"reads are limited to {_options.MaxRequestBytes} bytes" : "bad flags or range").ConfigureAwait(false);
                    return;
                }

                await ReadAsync(export, r, offset, buffer).ConfigureAwait(false);
                return;

            case NbdProtocol.CmdWrite:
                await WriteAsync(export, r, offset, inRange, buffer).ConfigureAwait(false);
                return;

            case NbdProtocol.CmdFlush:
                await DoAsync(export, r, () => device.Flush()).ConfigureAwait(false);
                return;

            case NbdProtocol.CmdTrim:
            case NbdProtocol.CmdWriteZeroes:
            {
                ushort allowed = r.Type == NbdProtocol.CmdTrim ? NbdProtocol.CmdFlagFua : (ushort)(NbdProtocol.CmdFlagFua | NbdProtocol.CmdFlagNoHole);
                uint refusal = (r.Flags & ~allowed) != 0 ? NbdProtocol.EINVAL : export.ReadOnly ? NbdProtocol.EPERM : !inRange ? (r.Type == NbdProtocol.CmdTrim ? NbdProtocol.EINVAL : NbdProtocol.ENOSPC) : 0;
                if (refusal != 0)
                {
                    await ErrorAsync(r, refusal, refusal == NbdProtocol.EPERM ? "the export is read-only" : "bad flags or range").ConfigureAwait(false);
                    return;
                }

                bool fua = (r.Flags & NbdProtocol.CmdFlagFua) != 0;
                bool mayUnmap = (r.Flags & NbdProtocol.CmdFlagNoHole) == 0;
                await DoAsync(export, r, () =>
                {
                    if (r.Type == NbdProtocol.CmdTrim)
                    {
                        device.Discard(offset, r.Length);
                    }
                    else
                    {
                        device.WriteZeroes(offset, r.Length, mayUnmap);
                    }

                    if (fua)
                    {
                        device.Flush();
                    }
                }).ConfigureAwait(false);
                return;
            }

            case NbdProtocol.CmdBlockStatus:
                if ((r.Flags & ~NbdProtocol.CmdFlagReqOne) != 0 || !allocation || !_structured || !inRange || r.Length == 0)
                {
                    await ErrorAsync(r, NbdProtocol.EINVAL, !allocation ? "select base:allocation with NBD_OPT_SET_META_CONTEXT first" : "bad flags or range").ConfigureAwait(false);
                    return;
                }

                await BlockStatusAsync(export, r, offset).ConfigureAwait(false);
                return;

            default:
                await ErrorAsync(r, NbdProtocol.EINVAL, $"{NbdProtocol.CommandName(r.Type)} is not supported").ConfigureAwait(false);
                return;
        }
    }

    private async Task ReadAsync(NbdServer.ExportState export, Request r, long offset, byte[] buffer)
    {
        if (r.Length == 0)
        {
            // Nothing to send; a structured read must still be answered with a chunk, never a simple reply.
            if (_structured)
            {
                ChunkHeader(r.Cookie, NbdProtocol.ReplyFlagDone, NbdProtocol.ReplyTypeNone, 0);
                await _stream.WriteAsync(_header.AsMemory(0, 20), Token).ConfigureAwait(false);
            }
            else
            {
                await StatusAsync(r, 0, null).ConfigureAwait(false);
            }

            return;
        }

        // Runs that read as zeroes go as hole chunks: twelve bytes instead of the zeroes.
        List<BlockExtent> holes = _structured ? Holes(export, offset, r.Length) : [];
        int nextHole = 0;
        for (long done = 0; done < r.Length;)
        {
            long at = offset + done;
            if (nextHole < holes.Count && holes[nextHole].Offset == at)
            {
                var hole = holes[nextHole++];
                ChunkHeader(r.Cookie, hole.End == offset + r.Length ? NbdProtocol.ReplyFlagDone : (ushort)0, NbdProtocol.ReplyTypeOffsetHole, 12);
                BinaryPrimitives.WriteUInt64BigEndian(_header.AsSpan(20), (ulong)at);
                BinaryPrimitives.WriteUInt32BigEndian(_header.AsSpan(28), (uint)hole.Length);
                await _stream.WriteAsync(_header.AsMemory(0, 32), Token).ConfigureAwait(false);
                done += hole.Length;
                continue;
            }

            long untilHole = nextHole < holes.Count ? holes[nextHole].Offset - at : long.MaxValue;
            int n = (int)Math.Min(Math.Min(Piece, r.Length - done), untilHole);
            string? failure = Device(export, () => export.Export.Device.Read(offset + done, buffer.AsSpan(0, n)));
            if (failure is not null)
            {
                if (!_structured && done > 0)
                {
                    // A simple reply already said success: the spec's only way out is to hang up.
                    throw new ProtocolViolation();
                }

                await ErrorAsync(r, NbdProtocol.EIO, failure).ConfigureAwait(false);
                return;
            }

            bool last = done + n == r.Length;
            if (_structured)
            {
                ChunkHeader(r.Cookie, last ? NbdProtocol.ReplyFlagDone : (ushort)0, NbdProtocol.ReplyTypeOffsetData, (uint)n + 8);
                BinaryPrimitives.WriteUInt64BigEndian(_header.AsSpan(20), (ulong)(offset + done));
                await _stream.WriteAsync(_header.AsMemory(0, 28), Token).ConfigureAwait(false);
            }
            else if (done == 0)
            {
                SimpleHeader(r.Cookie, 0);
                await _stream.WriteAsync(_header.AsMemory(0, 16), Token).ConfigureAwait(false);
            }

            await _stream.WriteAsync(buffer.AsMemory(0, n), Token).ConfigureAwait(false);
            done += n;
        }
    }

    /// <summary>The zero extents of the range, in order, as far as the device can say (none if it cannot, or fails).</summary>
    private static List<BlockExtent> Holes(NbdServer.ExportState export, long offset, uint length)
    {
        var holes = new List<BlockExtent>();
        if (export.Export.Device is not IAllocationMap map)
        {
            return holes;
        }

        IReadOnlyList<BlockExtent> extents = [];
        if (Device(export, () => extents = map.MapAllocation(offset, length)) is not null)
        {
            return holes;
        }

        long at = offset;
        foreach (var e in extents)
        {
            if (e.Offset != at || e.Length <= 0 || e.End > offset + length)
            {
                break; // past what the device answered sensibly, the rest is read as data
            }

            if (e.Zero)
            {
                holes.Add(e);
            }

            at = e.End;
        }

        return holes;
    }

    private async Task WriteAsync(NbdServer.ExportState export, Request r, long offset, bool inRange, byte[] buffer)
    {
        if (r.Length > _options.MaxRequestBytes)
        {
            throw new ProtocolViolation(); // its payload is too large to read only to throw away
        }

        uint refusal = (r.Flags & ~NbdProtocol.CmdFlagFua) != 0 ? NbdProtocol.EINVAL : export.ReadOnly ? NbdProtocol.EPERM : !inRange ? NbdProtocol.ENOSPC : 0;
        string? failure = null;
        for (long done = 0; done < r.Length;)
        {
            int n = (int)Math.Min(Piece, r.Length - done);
            await _stream.ReadExactlyAsync(buffer.AsMemory(0, n), Token).ConfigureAwait(false);
            if (refusal == 0 && failure is null)
            {
                long at = offset + done;
                failure = Device(export, () => export.Export.Device.Write(at, buffer.AsSpan(0, n)));
            }

            done += n;
        }

        if (refusal == 0 && failure is null && (r.Flags & NbdProtocol.CmdFlagFua) != 0)
        {
            failure = Device(export, () => export.Export.Device.Flush());
        }

        await StatusAsync(r, refusal != 0 ? refusal : failure is null ? 0 : NbdProtocol.EIO, refusal == NbdProtocol.EPERM ? "the export is read-only" : refusal != 0 ? "bad flags or range" : failure).ConfigureAwait(false);
    }

    private async Task BlockStatusAsync(NbdServer.ExportState export, Request r, long offset)
    {
        IReadOnlyList<BlockExtent> extents = [new BlockExtent(offset, r.Length, Hole: false, Zero: false)];
        if (export.Export.Device is IAllocationMap map)
        {
            string? failure = Device(export, () => extents = map.MapAllocation(offset, r.Length));
            if (failure is not null)
            {
                await ErrorAsync(r, NbdProtocol.EIO, failure).ConfigureAwait(false);
                return;
            }
        }

        // The device's answer is checked like a peer's: consecutive from the offset, nonzero, within the request.
        int count = (r.Flags & NbdProtocol.CmdFlagReqOne) != 0 ? 1 : Math.Min(extents.Count, MaxExtentsPerReply);
        var payload = new byte[4 + (8 * Math.Max(count, 1))];
        BinaryPrimitives.WriteUInt32BigEndian(payload, AllocationContextId);
        long at = offset, end = offset + r.Length;
        int written = 0;
        for (int i = 0; i < count && at < end; i++)
        {
            var e = extents[i];
            if (e.Offset != at || e.Length <= 0)
            {
                break;
            }

            uint length = (uint)Math.Min(e.Length, end - at);
            BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(4 + (8 * written)), length);
            BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(8 + (8 * written)), (e.Hole ? NbdProtocol.StateHole : 0) | (e.Zero ? NbdProtocol.StateZero : 0));
            written++;
            at += length;
        }

        if (written == 0)
        {
            // A device with nothing sensible to say: all of it is data, as far as anyone can tell.
            BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(4), r.Length);
            BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(8), 0);
            written = 1;
        }

        ChunkHeader(r.Cookie, NbdProtocol.ReplyFlagDone, NbdProtocol.ReplyTypeBlockStatus, (uint)(4 + (8 * written)));
        await _stream.WriteAsync(_header.AsMemory(0, 20), Token).ConfigureAwait(false);
        await _stream.WriteAsync(payload.AsMemory(0, 4 + (8 * written)), Token).ConfigureAwait(false);
    }

    private async Task DoAsync(NbdServer.ExportState export, Request r, Action action)
    {
        string? failure = Device(export, action);
        await StatusAsync(r, failure is null ? 0 : NbdProtocol.EIO, failure).ConfigureAwait(false);
    }

    /// <summary>Runs a device call under the export's lock; the failure's message, or null.</summary>
    private static string? Device(NbdServer.ExportState export, Action action)
    {
        try
        {
            lock (export.Gate)
            {
                action();
            }

            return null;
        }
        catch (Exception e) when (e is IOException or ArgumentException or ObjectDisposedException or NotSupportedException)
        {
            return e.Message;
        }
    }

    private Task ErrorAsync(Request r, uint error, string message) => StatusAsync(r, error, message);

    /// <summary>The reply to a request that carries no data: success, or an error with a message where the client reads them.</summary>
    private async Task StatusAsync(Request r, uint error, string? message)
    {
        if (error == 0 || !_structured)
        {
            SimpleHeader(r.Cookie, error);
            await _stream.WriteAsync(_header.AsMemory(0, 16), Token).ConfigureAwait(false);
            return;
        }

        byte[] text = Encoding.UTF8.GetBytes(message ?? string.Empty);
        int textLength = Math.Min(text.Length, NbdProtocol.MaxString);
        ChunkHeader(r.Cookie, NbdProtocol.ReplyFlagDone, NbdProtocol.ReplyTypeError, (uint)(6 + textLength));
        BinaryPrimitives.WriteUInt32BigEndian(_header.AsSpan(20), error);
        BinaryPrimitives.WriteUInt16BigEndian(_header.AsSpan(24), (ushort)textLength);
        await _stream.WriteAsync(_header.AsMemory(0, 26), Token).ConfigureAwait(false);
        await _stream.WriteAsync(text.AsMemory(0, textLength), Token).ConfigureAwait(false);
    }

    private void SimpleHeader(ulong cookie, uint error)
    {
        BinaryPrimitives.WriteUInt32BigEndian(_header, NbdProtocol.SimpleReplyMagic);
        BinaryPrimitives.WriteUInt32BigEndian(_header.AsSpan(4), error);
        BinaryPrimitives.WriteUInt64BigEndian(_header.AsSpan(8), cookie);
    }

    private void ChunkHeader(ulong cookie, ushort flags, ushort type, uint length)
    {
        BinaryPrimitives.WriteUInt32BigEndian(_header, NbdProtocol.StructuredReplyMagic);
        BinaryPrimitives.WriteUInt16BigEndian(_header.AsSpan(4), flags);
        BinaryPrimitives.WriteUInt16BigEndian(_header.AsSpan(6), type);
        BinaryPrimitives.WriteUInt64BigEndian(_header.AsSpan(8), cookie);
        BinaryPrimitives.WriteUInt32BigEndian(_header.AsSpan(16), length);
    }

    private async Task ReplyAsync(uint option, uint type, byte[]? data = null)
    {
        data ??= [];
        BinaryPrimitives.WriteUInt64BigEndian(_header, NbdProtocol.OptionReplyMagic);
        BinaryPrimitives.WriteUInt32BigEndian(_header.AsSpan(8), option);
        BinaryPrimitives.WriteUInt32BigEndian(_header.AsSpan(12), type);
        BinaryPrimitives.WriteUInt32BigEndian(_header.AsSpan(16), (uint)data.Length);
        await _stream.WriteAsync(_header.AsMemory(0, 20), Token).ConfigureAwait(false);
        await _stream.WriteAsync(data, Token).ConfigureAwait(false);
    }

    private Task ReplyErrorAsync(uint option, uint type, string message) => ReplyAsync(option, type, Encoding.UTF8.GetBytes(message));

    private static byte[] InfoString(ushort type, string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        var info = new byte[2 + Math.Min(bytes.Length, NbdProtocol.MaxString)];
        BinaryPrimitives.WriteUInt16BigEndian(info, type);
        bytes.AsSpan(0, info.Length - 2).CopyTo(info.AsSpan(2));
        return info;
    }

    private static bool TryString(ReadOnlySpan<byte> bytes, out string text)
    {
        text = string.Empty;
        if (bytes.Length > NbdProtocol.MaxString || bytes.Contains((byte)0))
        {
            return false;
        }

        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }

    private readonly record struct Request(ushort Flags, ushort Type, ulong Cookie, ulong Offset, uint Length);

    /// <summary>The client broke the protocol: the session ends (a hard disconnect).</summary>
    private sealed class ProtocolViolation : Exception
    {
    }

    /// <summary>Reads the length-prefixed fields of an option's data, never past its end.</summary>
    private ref struct OptionReader(ReadOnlySpan<byte> data)
    {
        private ReadOnlySpan<byte> _rest = data;

        public readonly int Remaining => _rest.Length;

        public bool TryU16(out ushort value)
        {
            value = 0;
            if (_rest.Length < 2)
            {
                return false;
            }

            value = BinaryPrimitives.ReadUInt16BigEndian(_rest);
            _rest = _rest[2..];
            return true;
        }

        public bool TryU32(out uint value)
        {
            value = 0;
            if (_rest.Length < 4)
            {
                return false;
            }

            value = BinaryPrimitives.ReadUInt32BigEndian(_rest);
            _rest = _rest[4..];
            return true;
        }

        public bool TryString(out string text)
        {
            text = string.Empty;
            if (!TryU32(out uint length) || length > _rest.Length || !NbdServerSession.TryString(_rest[..(int)length], out text))
            {
                return false;
            }

            _rest = _rest[(int)length..];
            return true;
        }
    }
}
