using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace HostVM.Storage.Nbd;

/// <summary>
/// One connection to an NBD export, in the transmission phase after a fixed newstyle handshake (structured replies,
/// <c>base:allocation</c>, block size constraints, TLS when the URI asks for it). One request at a time, synchronous,
/// every socket operation bounded by <see cref="NbdClientOptions.IoTimeout"/>. The server is not trusted: every reply is
/// checked (cookie, offsets and lengths within the request, chunk sizes) before a byte of it lands in a caller's buffer.
/// Any failure other than the server's own error reply (<see cref="NbdServerErrorException"/>) leaves the connection
/// <see cref="IsBroken"/>: it is closed and every later call fails; <see cref="NbdBlockDevice"/> reconnects.
/// Requests must respect <see cref="MinimumBlockSize"/> alignment and <see cref="MaximumPayload"/>; the device splits.
/// </summary>
public sealed class NbdClient : IDisposable
{
    private const int MaxOptionReply = 8192; // a name or message is at most 4096 bytes, plus a few fixed fields
    private const int MaxOptionReplies = 64; // INFO or META_CONTEXT replies to one option: a server sending more is stalling
    private const int MaxErrorChunk = NbdProtocol.MaxString + 14;
    private const int MaxChunksWithoutData = 64;

    private readonly Socket _socket;
    private readonly NbdUri _uri;
    private Stream _stream;
    private ulong _nextCookie = 1;
    private uint _allocationContext;
    private bool _hasAllocationContext;
    private volatile bool _broken;
    private bool _transmitting;

    private NbdClient(Socket socket, NbdUri uri, TimeSpan ioTimeout)
    {
        _socket = socket;
        _uri = uri;
        int ms = (int)Math.Clamp(ioTimeout.TotalMilliseconds, 1, int.MaxValue);
        socket.ReceiveTimeout = ms;
        socket.SendTimeout = ms;
        _stream = new NetworkStream(socket, ownsSocket: false);
    }

    /// <summary>The export's size in bytes, rounded down to whole 512-byte sectors (a partial last sector is not usable).</summary>
    public long Size { get; private set; }

    /// <summary>The size the server announced, before rounding.</summary>
    public long AnnouncedSize { get; private set; }

    /// <summary>The transmission flags the server sent (NBD_FLAG_*).</summary>
    public ushort TransmissionFlags { get; private set; }

    public bool ReadOnly => Has(NbdProtocol.FlagReadOnly);

    public bool CanFlush => Has(NbdProtocol.FlagSendFlush);

    public bool CanTrim => Has(NbdProtocol.FlagSendTrim);

    public bool CanWriteZeroes => Has(NbdProtocol.FlagSendWriteZeroes);

    public bool StructuredReplies { get; private set; }

    /// <summary>Whether the server agreed to <c>base:allocation</c>, so <see cref="BlockStatus"/> can be asked.</summary>
    public bool CanReportAllocation => _hasAllocationContext;

    /// <summary>Whether the connection is encrypted.</summary>
    public bool Tls { get; private set; }

    /// <summary>Offsets and lengths of requests must be multiples of this (1 unless the server said otherwise).</summary>
    public int MinimumBlockSize { get; private set; } = 1;

    public int PreferredBlockSize { get; private set; } = 4096;

    /// <summary>The largest read or write payload: what the server allows, at most 32 MiB, a multiple of the minimum block.</summary>
    public int MaximumPayload { get; private set; } = NbdProtocol.MaxPayload;

    /// <summary>The connection failed or the server broke the protocol; it is closed and cannot be used again.</summary>
    public bool IsBroken => _broken;

    /// <summary>Connects to the export <paramref name="uri"/> names and negotiates up to the transmission phase.</summary>
    /// <exception cref="IOException">The server cannot be reached, refused the export, or broke the protocol.</exception>
    public static NbdClient Connect(NbdUri uri, NbdClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(uri);
        options ??= NbdClientOptions.Default;
        Socket socket = Open(uri, options.ConnectTimeout);
        var client = new NbdClient(socket, uri, options.IoTimeout);
        try
        {
            client.Handshake();
            return client;
        }
        catch (Exception e)
        {
            client.Break();
            throw client.AsIOException(e, "negotiating");
        }
    }

    /// <summary>Reads <c>destination.Length</c> bytes (at most <see cref="MaximumPayload"/>) at <paramref name="offset"/>.</summary>
    public void Read(long offset, Span<byte> destination)
    {
        CheckRequest(offset, destination.Length, payload: true);
        try
        {
            ulong cookie = Send(NbdProtocol.CmdRead, 0, offset, (uint)destination.Length, []);
            if (StructuredReplies)
            {
                ReadStructured(cookie, offset, destination);
            }
            else
            {
                uint error = ReadSimpleReply(cookie);
                ThrowIfError(error, null, NbdProtocol.CmdRead, offset, destination.Length);
                _stream.ReadExactly(destination);
            }
        }
        catch (Exception e) when (e is not NbdServerErrorException)
        {
            Break();
            throw AsIOException(e, $"reading {destination.Length} bytes at {offset}");
        }
    }

    /// <summary>Writes <paramref name="source"/> (at most <see cref="MaximumPayload"/> bytes) at <paramref name="offset"/>.</summary>
    public void Write(long offset, ReadOnlySpan<byte> source, bool fua = false)
    {
        CheckRequest(offset, source.Length, payload: true);
        Command(NbdProtocol.CmdWrite, fua && Has(NbdProtocol.FlagSendFua) ? NbdProtocol.CmdFlagFua : (ushort)0, offset, (uint)source.Length, source);
    }

    /// <summary>Makes completed writes durable; a no-op where the server has no flush (it then has no write cache to flush).</summary>
    public void Flush()
    {
        if (CanFlush)
        {
            Command(NbdProtocol.CmdFlush, 0, 0, 0, []);
        }
    }

    /// <summary>Tells the server the range is no longer needed; a no-op where it does not take trims (they are advice).</summary>
    public void Trim(long offset, uint length)
    {
        CheckRequest(offset, length, payload: false);
        if (CanTrim && length > 0)
        {
            Command(NbdProtocol.CmdTrim, 0, offset, length, []);
        }
    }

    /// <summary>Zeroes the range; with <paramref name="noHole"/> the server must keep it allocated. Needs <see cref="CanWriteZeroes"/>.</summary>
    public void WriteZeroes(long offset, uint length, bool noHole)
    {
        CheckRequest(offset, length, payload: false);
        if (!CanWriteZeroes)
        {
            throw new NotSupportedException($"NBD server {_uri} does not take write-zeroes requests; write zeroes instead.");
        }

        if (length > 0)
        {
            Command(NbdProtocol.CmdWriteZeroes, noHole ? NbdProtocol.CmdFlagNoHole : (ushort)0, offset, length, []);
        }
    }

    /// <summary>
    /// The allocation of the range from <paramref name="offset"/> as the server's <c>base:allocation</c> context reports
    /// it: consecutive extents starting at <paramref name="offset"/>, clipped to <paramref name="length"/>; they may cover
    /// less (ask again from where they end). Without the context the whole range is reported as data.
    /// </summary>
    public IReadOnlyList<BlockExtent> BlockStatus(long offset, uint length)
    {
        CheckRequest(offset, length, payload: false);
        if (length == 0)
        {
            return [];
        }

        if (!CanReportAllocation)
        {
            return [new BlockExtent(offset, length, Hole: false, Zero: false)];
        }

        try
        {
            ulong cookie = Send(NbdProtocol.CmdBlockStatus, 0, offset, length, []);
            return ReadBlockStatus(cookie, offset, length);
        }
        catch (Exception e) when (e is not NbdServerErrorException)
        {
            Break();
            throw AsIOException(e, $"asking the block status of {length} bytes at {offset}");
        }
    }

    /// <summary>Ends the session politely (NBD_CMD_DISC) where it is still sound, then closes the socket.</summary>
    public void Dispose()
    {
        if (!_broken && _transmitting)
        {
            try
            {
                Send(NbdProtocol.CmdDisc, 0, 0, 0, []);
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
                // The server is gone already: nothing to say goodbye to.
            }
        }

        Break();
    }

    /// <summary>Closes the connection at once (another thread's blocked call fails); the client is broken afterwards.</summary>
    public void Abort() => Break();

    public override string ToString() => _uri.ToString();

    private static Socket Open(NbdUri uri, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        string where = uri.SocketPath is { } p ? $"Unix socket '{p}'" : $"{uri.Host}:{uri.Port}";
        try
        {
            if (uri.SocketPath is { } path)
            {
                var unix = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    unix.ConnectAsync(new UnixDomainSocketEndPoint(path), cts.Token).AsTask().GetAwaiter().GetResult();
                    return unix;
                }
                catch
                {
                    unix.Dispose();
                    throw;
                }
            }

            IPAddress[] addresses = IPAddress.TryParse(uri.Host, out var literal)
                ? [literal]
                : Dns.GetHostAddressesAsync(uri.Host!, cts.Token).GetAwaiter().GetResult();
            SocketException? last = null;
            foreach (IPAddress address in addresses)
            {
                var tcp = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    tcp.ConnectAsync(new IPEndPoint(address, uri.Port), cts.Token).AsTask().GetAwaiter().GetResult();
                    return tcp;
                }
                catch (SocketException e)
                {
                    tcp.Dispose();
                    last = e;
                }
                catch
                {
                    tcp.Dispose();
                    throw;
                }
            }

            throw last ?? new SocketException((int)SocketError.HostNotFound);
        }
        catch (OperationCanceledException)
        {
            throw new IOException($"NBD server {where}: no connection within {timeout.TotalSeconds:0.#} s; is it running and reachable?");
        }
        catch (SocketException e)
        {
            throw new IOException($"NBD server {where}: cannot connect ({e.SocketErrorCode}: {e.Message}); is it running and listening there?", e);
        }
    }

    private void Handshake()
    {
        Span<byte> greeting = stackalloc byte[18];
        _stream.ReadExactly(greeting[..16]);
        if (BinaryPrimitives.ReadUInt64BigEndian(greeting) != NbdProtocol.InitMagic)
        {
            throw Violation("the server's greeting lacks NBDMAGIC: is this an NBD server?");
        }

        ulong style = BinaryPrimitives.ReadUInt64BigEndian(greeting[8..]);
        if (style == NbdProtocol.OldstyleMagic)
        {
            throw new NbdServerErrorException($"NBD server {_uri} speaks only the oldstyle handshake, which has no export names: run it in newstyle mode (the default of qemu-nbd, nbdkit and nbd-server).");
        }

        if (style != NbdProtocol.OptionMagic)
        {
            throw Violation("the server's greeting has neither the newstyle nor the oldstyle magic");
        }

        _stream.ReadExactly(greeting[16..18]);
        ushort handshakeFlags = BinaryPrimitives.ReadUInt16BigEndian(greeting[16..]);
        bool fixedNewstyle = (handshakeFlags & NbdProtocol.FlagFixedNewstyle) != 0;
        bool noZeroes = (handshakeFlags & NbdProtocol.FlagNoZeroes) != 0;
        Span<byte> clientFlags = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(clientFlags, (fixedNewstyle ? NbdProtocol.ClientFlagFixedNewstyle : 0) | (noZeroes ? NbdProtocol.ClientFlagNoZeroes : 0));
        _stream.Write(clientFlags);

        bool wantTls = _uri.RequireTls || _uri.TlsCaFile is not null || _uri.TlsFingerprint is not null;
        if (!fixedNewstyle)
        {
            // Plain newstyle allows one option only: the export's name, with no way to report errors.
            if (wantTls)
            {
                throw new NbdServerErrorException($"NBD server {_uri} does not speak fixed newstyle negotiation, so it cannot do TLS.");
            }

            ExportName(noZeroes);
            return;
        }

        if (wantTls)
        {
            StartTls();
        }

        StructuredReplies = SimpleOption(NbdProtocol.OptStructuredReply);
        if (StructuredReplies)
        {
            SetMetaContext();
        }

        if (!Go())
        {
            ExportName(noZeroes);
        }
    }

    private void StartTls()
    {
        SendOption(NbdProtocol.OptStartTls, []);
        var (type, data) = ReadOptionReply(NbdProtocol.OptStartTls);
        if (type != NbdProtocol.RepAck)
        {
            throw new NbdServerErrorException($"NBD server {_uri} refused TLS ({RepName(type)}{Message(data)}): the URI asks for TLS, so HostVM does not go on without it. Give the server TLS credentials (qemu-nbd --tls-creds, nbdkit --tls=require), or use nbd:// for a trusted network.");
        }

        var ssl = new SslStream(_stream, leaveInnerStreamOpen: false);
        string? host = _uri.TlsHostname ?? _uri.Host;
        ssl.AuthenticateAsClient(new SslClientAuthenticationOptions
        {
            TargetHost = host ?? "localhost",
            RemoteCertificateValidationCallback = (_, certificate, _, errors) => Trusted(certificate, errors, checkName: host is not null),
        });
        _stream = ssl;
        Tls = true;
    }

    private bool Trusted(X509Certificate? certificate, SslPolicyErrors errors, bool checkName)
    {
        if (!_uri.TlsVerifyPeer)
        {
            return true;
        }

        if (certificate is null)
        {
            return false;
        }

        if (_uri.TlsFingerprint is { } wanted)
        {
            string actual = Convert.ToHexString(SHA256.HashData(certificate.GetRawCertData()));
            return string.Equals(actual, wanted.Replace(":", string.Empty, StringComparison.Ordinal), StringComparison.OrdinalIgnoreCase);
        }

        if (checkName && (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            return false;
        }

        if (_uri.TlsCaFile is not { } caFile)
        {
            return (errors & ~SslPolicyErrors.RemoteCertificateNameMismatch) == SslPolicyErrors.None;
        }

        var roots = new X509Certificate2Collection();
        roots.ImportFromPemFile(caFile);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return chain.Build(leaf);
    }

    private bool SimpleOption(uint option)
    {
        SendOption(option, []);
        var (type, data) = ReadOptionReply(option);
        if (type == NbdProtocol.RepAck)
        {
            return true;
        }

        if ((type & NbdProtocol.RepErrorBit) == 0)
        {
            throw Violation($"the server answered {NbdProtocol.OptionName(option)} with reply type {type}");
        }

        CheckTlsRequired(type, data);
        return false;
    }

    private void SetMetaContext()
    {
        byte[] name = Encoding.UTF8.GetBytes(_uri.ExportName);
        byte[] query = Encoding.UTF8.GetBytes(NbdProtocol.AllocationContext);
        var data = new byte[4 + name.Length + 4 + 4 + query.Length];
        BinaryPrimitives.WriteUInt32BigEndian(data, (uint)name.Length);
        name.CopyTo(data, 4);
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(4 + name.Length), 1);
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(8 + name.Length), (uint)query.Length);
        query.CopyTo(data, 12 + name.Length);
        SendOption(NbdProtocol.OptSetMetaContext, data);
        for (int i = 0; i < MaxOptionReplies; i++)
        {
            var (type, reply) = ReadOptionReply(NbdProtocol.OptSetMetaContext);
            if (type == NbdProtocol.RepMetaContext)
            {
                if (reply.Length < 4)
                {
                    throw Violation("a metadata context reply is shorter than its id");
                }

                if (Encoding.UTF8.GetString(reply, 4, reply.Length - 4) == NbdProtocol.AllocationContext)
                {
                    _allocationContext = BinaryPrimitives.ReadUInt32BigEndian(reply);
                    _hasAllocationContext = true;
                }
            }
            else if (type == NbdProtocol.RepAck)
            {
                return;
            }
            else if ((type & NbdProtocol.RepErrorBit) != 0)
            {
                // Block status is optional: without the context the whole disk counts as data.
                CheckTlsRequired(type, reply);
                _allocationContext = 0;
                _hasAllocationContext = false;
                return;
            }
            else
            {
                throw Violation($"the server answered NBD_OPT_SET_META_CONTEXT with reply type {type}");
            }
        }

        throw Violation($"the server sent more than {MaxOptionReplies} replies to NBD_OPT_SET_META_CONTEXT");
    }

    /// <summary>NBD_OPT_GO asking for the block size constraints; false if the server does not know the option.</summary>
    private bool Go()
    {
        byte[] name = Encoding.UTF8.GetBytes(_uri.ExportName);
        var data = new byte[4 + name.Length + 2 + 2];
        BinaryPrimitives.WriteUInt32BigEndian(data, (uint)name.Length);
        name.CopyTo(data, 4);
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(4 + name.Length), 1);
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(6 + name.Length), NbdProtocol.InfoBlockSize);
        SendOption(NbdProtocol.OptGo, data);
        bool haveExport = false;
        for (int i = 0; i < MaxOptionReplies; i++)
        {
            var (type, reply) = ReadOptionReply(NbdProtocol.OptGo);
            switch (type)
            {
                case NbdProtocol.RepInfo:
                    haveExport |= Info(reply);
                    break;
                case NbdProtocol.RepAck when !haveExport:
                    throw Violation("the server accepted NBD_OPT_GO without saying the export's size (NBD_INFO_EXPORT)");
                case NbdProtocol.RepAck:
                    _transmitting = true;
                    return true;
                case NbdProtocol.RepErrUnsup:
                    return false;
                case NbdProtocol.RepErrUnknown:
                    throw new NbdServerErrorException($"NBD server {_uri} has no export named '{_uri.ExportName}'{Message(reply)}: check the name (nbdinfo --list shows them).");
                case NbdProtocol.RepErrBlockSizeReqd:
                    throw Violation("the server asked for block size negotiation, which the client had requested");
                default:
                    if ((type & NbdProtocol.RepErrorBit) == 0)
                    {
                        throw Violation($"the server answered NBD_OPT_GO with reply type {type}");
                    }

                    CheckTlsRequired(type, reply);
                    throw new NbdServerErrorException($"NBD server {_uri} refused export '{_uri.ExportName}' ({RepName(type)}{Message(reply)}).");
            }
        }

        throw Violation($"the server sent more than {MaxOptionReplies} replies to NBD_OPT_GO");
    }

    /// <summary>One NBD_REP_INFO; true if it was NBD_INFO_EXPORT.</summary>
    private bool Info(byte[] reply)
    {
        if (reply.Length < 2)
        {
            throw Violation("an NBD_REP_INFO reply has no information type");
        }

        switch (BinaryPrimitives.ReadUInt16BigEndian(reply))
        {
            case NbdProtocol.InfoExport:
                if (reply.Length != 12)
                {
                    throw Violation($"NBD_INFO_EXPORT is {reply.Length} bytes, not 12");
                }

                SetExport(BinaryPrimitives.ReadUInt64BigEndian(reply.AsSpan(2)), BinaryPrimitives.ReadUInt16BigEndian(reply.AsSpan(10)));
                return true;
            case NbdProtocol.InfoBlockSize:
                if (reply.Length != 14)
                {
                    throw Violation($"NBD_INFO_BLOCK_SIZE is {reply.Length} bytes, not 14");
                }

                SetBlockSizes(BinaryPrimitives.ReadUInt32BigEndian(reply.AsSpan(2)), BinaryPrimitives.ReadUInt32BigEndian(reply.AsSpan(6)), BinaryPrimitives.ReadUInt32BigEndian(reply.AsSpan(10)));
                return false;
            default:
                return false; // name, description, and types added after this was written
        }
    }

    private void SetBlockSizes(uint minimum, uint preferred, uint maximum)
    {
        if (minimum == 0 || minimum > 65536 || !uint.IsPow2(minimum))
        {
            throw Violation($"the minimum block size {minimum} is not a power of two up to 65536");
        }

        if (preferred < Math.Max(minimum, 512) || !uint.IsPow2(preferred))
        {
            throw Violation($"the preferred block size {preferred} is not a power of two of at least 512 and the minimum ({minimum})");
        }

        if (maximum < preferred)
        {
            throw Violation($"the maximum payload {maximum} is below the preferred block size {preferred}");
        }

        MinimumBlockSize = (int)minimum;
        PreferredBlockSize = (int)Math.Min(preferred, 1u << 24);
        long max = Math.Min(maximum, NbdProtocol.MaxPayload);
        MaximumPayload = (int)(max / minimum * minimum);
    }

    private void SetExport(ulong size, ushort flags)
    {
        // 2^62 is far beyond any disk, and keeps every offset + length sum below long.MaxValue.
        if (size > 1UL << 62)
        {
            throw Violation($"the export's size {size} is absurd");
        }

        AnnouncedSize = (long)size;
        Size = (long)size / 512 * 512;
        TransmissionFlags = (flags & NbdProtocol.FlagHasFlags) != 0 ? flags : (ushort)0;
    }

    private void ExportName(bool noZeroes)
    {
        SendOption(NbdProtocol.OptExportName, Encoding.UTF8.GetBytes(_uri.ExportName));
        Span<byte> reply = stackalloc byte[10 + 124];
        int length = noZeroes ? 10 : 134;
        try
        {
            _stream.ReadExactly(reply[..length]);
        }
        catch (EndOfStreamException e)
        {
            throw new NbdServerErrorException($"NBD server {_uri} closed the connection on export '{_uri.ExportName}' (it does not know NBD_OPT_GO, so it cannot say why): is the export name right?", e);
        }

        SetExport(BinaryPrimitives.ReadUInt64BigEndian(reply), BinaryPrimitives.ReadUInt16BigEndian(reply[8..]));
        _transmitting = true;
    }

    private void CheckTlsRequired(uint type, byte[] data)
    {
        if (type == NbdProtocol.RepErrTlsReqd)
        {
            throw new NbdServerErrorException($"NBD server {_uri} requires TLS{Message(data)}: use an nbds:// URI (with x-tls-ca=CA.pem or x-tls-fingerprint=SHA256).");
        }
    }

    private void SendOption(uint option, ReadOnlySpan<byte> data)
    {
        Span<byte> header = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(header, NbdProtocol.OptionMagic);
        BinaryPrimitives.WriteUInt32BigEndian(header[8..], option);
        BinaryPrimitives.WriteUInt32BigEndian(header[12..], (uint)data.Length);
        _stream.Write(header);
        _stream.Write(data);
    }

    private (uint Type, byte[] Data) ReadOptionReply(uint option)
    {
        Span<byte> header = stackalloc byte[20];
        _stream.ReadExactly(header);
        if (BinaryPrimitives.ReadUInt64BigEndian(header) != NbdProtocol.OptionReplyMagic)
        {
            throw Violation($"the reply to {NbdProtocol.OptionName(option)} lacks the option reply magic");
        }

        if (BinaryPrimitives.ReadUInt32BigEndian(header[8..]) != option)
        {
            throw Violation($"the reply to {NbdProtocol.OptionName(option)} names option {BinaryPrimitives.ReadUInt32BigEndian(header[8..])}");
        }

        uint type = BinaryPrimitives.ReadUInt32BigEndian(header[12..]);
        uint length = BinaryPrimitives.ReadUInt32BigEndian(header[16..]);
        if (length > MaxOptionReply)
        {
            throw Violation($"a reply to {NbdProtocol.OptionName(option)} is {length} bytes long");
        }

        var data = new byte[length];
        _stream.ReadExactly(data);
        return (type, data);
    }

    private void Command(ushort command, ushort flags, long offset, uint length, ReadOnlySpan<byte> payload)
    {
        try
        {
            ulong cookie = Send(command, flags, offset, length, payload);
            if (StructuredReplies)
            {
                ReadStructuredStatus(cookie, command, offset, length);
            }
            else
            {
                ThrowIfError(ReadSimpleReply(cookie), null, command, offset, length);
            }
        }
        catch (Exception e) when (e is not NbdServerErrorException)
        {
            Break();
            throw AsIOException(e, $"{NbdProtocol.CommandName(command)} of {length} bytes at {offset}");
        }
    }

    private ulong Send(ushort command, ushort flags, long offset, uint length, ReadOnlySpan<byte> payload)
    {
        ThrowIfBroken();
        ulong cookie = _nextCookie++;
        Span<byte> header = stackalloc byte[28];
        BinaryPrimitives.WriteUInt32BigEndian(header, NbdProtocol.RequestMagic);
        BinaryPrimitives.WriteUInt16BigEndian(header[4..], flags);
        BinaryPrimitives.WriteUInt16BigEndian(header[6..], command);
        BinaryPrimitives.WriteUInt64BigEndian(header[8..], cookie);
        BinaryPrimitives.WriteUInt64BigEndian(header[16..], (ulong)offset);
        BinaryPrimitives.WriteUInt32BigEndian(header[24..], length);
        if (payload.Length is > 0 and <= 64 * 1024)
        {
            // One send for a small write: a separate header would go out as a packet of its own.
            byte[] joined = ArrayPool<byte>.Shared.Rent(28 + payload.Length);
            try
            {
                header.CopyTo(joined);
                payload.CopyTo(joined.AsSpan(28));
                _stream.Write(joined, 0, 28 + payload.Length);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(joined);
            }
        }
        else
        {
            _stream.Write(header);
            _stream.Write(payload);
        }

        return cookie;
    }

    /// <summary>The rest of a simple reply after its magic, or a whole one: returns its error.</summary>
    private uint ReadSimpleReply(ulong cookie)
    {
        Span<byte> reply = stackalloc byte[16];
        _stream.ReadExactly(reply);
        if (BinaryPrimitives.ReadUInt32BigEndian(reply) != NbdProtocol.SimpleReplyMagic)
        {
            throw Violation("a reply lacks the simple reply magic");
        }

        CheckCookie(BinaryPrimitives.ReadUInt64BigEndian(reply[8..]), cookie);
        return BinaryPrimitives.ReadUInt32BigEndian(reply[4..]);
    }

    /// <summary>The next reply header: a simple reply (its error) or a structured chunk's header (flags, type, length).</summary>
    private ReplyHeader ReadReplyHeader(ulong cookie)
    {
        Span<byte> header = stackalloc byte[20];
        _stream.ReadExactly(header[..16]);
        uint magic = BinaryPrimitives.ReadUInt32BigEndian(header);
        if (magic == NbdProtocol.SimpleReplyMagic)
        {
            CheckCookie(BinaryPrimitives.ReadUInt64BigEndian(header[8..]), cookie);
            return new ReplyHeader(Simple: true, BinaryPrimitives.ReadUInt32BigEndian(header[4..]), 0, 0, 0);
        }

        if (magic != NbdProtocol.StructuredReplyMagic)
        {
            throw Violation($"a reply starts with 0x{magic:x8}, neither reply magic");
        }

        _stream.ReadExactly(header[16..]);
        CheckCookie(BinaryPrimitives.ReadUInt64BigEndian(header[8..]), cookie);
        return new ReplyHeader(
            Simple: false,
            Error: 0,
            Flags: BinaryPrimitives.ReadUInt16BigEndian(header[4..]),
            Type: BinaryPrimitives.ReadUInt16BigEndian(header[6..]),
            Length: BinaryPrimitives.ReadUInt32BigEndian(header[16..]));
    }

    private void ReadStructured(ulong cookie, long offset, Span<byte> destination)
    {
        int length = destination.Length;
        var covered = new List<(long Start, long Length)>();
        int maxChunks = Math.Max(1024, (length / 512) + 2);
        (uint Error, string? Message)? failure = null;
        for (int chunks = 0; ; chunks++)
        {
            if (chunks > maxChunks)
            {
                throw Violation($"the reply to a read of {length} bytes has more than {maxChunks} chunks");
            }

            ReplyHeader h = ReadReplyHeader(cookie);
            if (h.Simple)
            {
                // Forbidden for reads once structured replies are on; an error is still understood, data would not be.
                if (h.Error == 0)
                {
                    throw Violation("the server sent a simple reply with data to a read after agreeing to structured replies");
                }

                ThrowIfError(h.Error, null, NbdProtocol.CmdRead, offset, length);
            }

            switch (h.Type)
            {
                case NbdProtocol.ReplyTypeOffsetData:
                {
                    if (h.Length < 9 || h.Length - 8 > (uint)length)
                    {
                        throw Violation($"a data chunk of {h.Length} bytes does not fit a read of {length}");
                    }

                    long at = ReadChunkOffset();
                    int bytes = (int)(h.Length - 8);
                    int within = Within(at, bytes, offset, length, "data");
                    _stream.ReadExactly(destination.Slice(within, bytes));
                    covered.Add((within, bytes));
                    break;
                }

                case NbdProtocol.ReplyTypeOffsetHole:
                {
                    if (h.Length != 12)
                    {
                        throw Violation($"a hole chunk is {h.Length} bytes, not 12");
                    }

                    long at = ReadChunkOffset();
                    uint bytes = ReadU32();
                    if (bytes == 0 || bytes > (uint)length)
                    {
                        throw Violation($"a hole of {bytes} bytes in a read of {length}");
                    }

                    int within = Within(at, (int)bytes, offset, length, "hole");
                    destination.Slice(within, (int)bytes).Clear();
                    covered.Add((within, bytes));
                    break;
                }

                default:
                    failure ??= ReadOtherChunk(h);
                    break;
            }

            if ((h.Flags & NbdProtocol.ReplyFlagDone) != 0)
            {
                break;
            }
        }

        if (failure is { } f)
        {
            ThrowIfError(f.Error, f.Message, NbdProtocol.CmdRead, offset, length);
        }

        covered.Sort();
        long end = 0;
        foreach (var (start, bytes) in covered)
        {
            if (start != end)
            {
                throw Violation(start < end
                    ? $"the reply to a read at {offset} sends byte {offset + start} twice"
                    : $"the reply to a read at {offset} leaves bytes {offset + end} to {offset + start - 1} out");
            }

            end = start + bytes;
        }

        if (end != length)
        {
            throw Violation($"the reply to a read of {length} bytes at {offset} covers only {end}");
        }
    }

    private void ReadStructuredStatus(ulong cookie, ushort command, long offset, uint length)
    {
        (uint Error, string? Message)? failure = null;
        for (int chunks = 0; ; chunks++)
        {
            if (chunks > MaxChunksWithoutData)
            {
                throw Violation($"the reply to a {NbdProtocol.CommandName(command)} has more than {MaxChunksWithoutData} chunks");
            }

            ReplyHeader h = ReadReplyHeader(cookie);
            if (h.Simple)
            {
                ThrowIfError(h.Error, null, command, offset, length);
                return;
            }

            failure ??= ReadOtherChunk(h);
            if ((h.Flags & NbdProtocol.ReplyFlagDone) != 0)
            {
                break;
            }
        }

        if (failure is { } f)
        {
            ThrowIfError(f.Error, f.Message, command, offset, length);
        }
    }

    private List<BlockExtent> ReadBlockStatus(ulong cookie, long offset, uint length)
    {
        List<BlockExtent>? extents = null;
        (uint Error, string? Message)? failure = null;
        for (int chunks = 0; ; chunks++)
        {
            if (chunks > MaxChunksWithoutData)
            {
                throw Violation($"the reply to a block status request has more than {MaxChunksWithoutData} chunks");
            }

            ReplyHeader h = ReadReplyHeader(cookie);
            if (h.Simple)
            {
                ThrowIfError(h.Error, null, NbdProtocol.CmdBlockStatus, offset, length);
                throw Violation("the server answered a block status request with a simple reply");
            }

            if (h.Type == NbdProtocol.ReplyTypeBlockStatus)
            {
                if (extents is not null)
                {
                    throw Violation("a block status reply has two chunks for the one context asked for");
                }

                extents = ReadExtents(h.Length, offset, length);
            }
            else
            {
                failure ??= ReadOtherChunk(h);
            }

            if ((h.Flags & NbdProtocol.ReplyFlagDone) != 0)
            {
                break;
            }
        }

        if (failure is { } f)
        {
            ThrowIfError(f.Error, f.Message, NbdProtocol.CmdBlockStatus, offset, length);
        }

        return extents ?? throw Violation("a block status reply ended without a block status chunk");
    }

    private List<BlockExtent> ReadExtents(uint chunkLength, long offset, uint length)
    {
        if (chunkLength < 12 || (chunkLength - 4) % 8 != 0 || (chunkLength - 4) / 8 > NbdProtocol.MaxExtents)
        {
            throw Violation($"a block status chunk is {chunkLength} bytes long");
        }

        if (ReadU32() != _allocationContext)
        {
            throw Violation("a block status chunk is for a metadata context the client did not select");
        }

        int count = (int)((chunkLength - 4) / 8);
        var extents = new List<BlockExtent>(Math.Min(count, 1024));
        long at = offset;
        long end = Math.Min(offset + length, Size);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(8 * Math.Min(count, 8192));
        try
        {
            for (int i = 0; i < count;)
            {
                int batch = Math.Min(count - i, 8192);
                _stream.ReadExactly(buffer.AsSpan(0, batch * 8));
                for (int j = 0; j < batch; j++, i++)
                {
                    uint bytes = BinaryPrimitives.ReadUInt32BigEndian(buffer.AsSpan(j * 8));
                    uint flags = BinaryPrimitives.ReadUInt32BigEndian(buffer.AsSpan((j * 8) + 4));
                    if (bytes == 0)
                    {
                        throw Violation("a block status extent has length 0");
                    }

                    if (at >= end)
                    {
                        // Only the last extent may reach past the request.
                        throw Violation("a block status reply has extents after the end of the range asked for");
                    }

                    long take = Math.Min(bytes, end - at);
                    bool hole = (flags & NbdProtocol.StateHole) != 0, zero = (flags & NbdProtocol.StateZero) != 0;
                    if (extents.Count > 0 && extents[^1] is { } last && last.Hole == hole && last.Zero == zero)
                    {
                        extents[^1] = last with { Length = last.Length + take };
                    }
                    else
                    {
                        extents.Add(new BlockExtent(at, take, hole, zero));
                    }

                    at += take;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return extents;
    }

    /// <summary>A chunk that is neither data nor block status: NONE, an error (returned), or a violation.</summary>
    private (uint Error, string? Message)? ReadOtherChunk(ReplyHeader h)
    {
        if (h.Type == NbdProtocol.ReplyTypeNone)
        {
            if (h.Length != 0 || (h.Flags & NbdProtocol.ReplyFlagDone) == 0)
            {
                throw Violation("an NBD_REPLY_TYPE_NONE chunk has a payload or is not the last");
            }

            return null;
        }

        if ((h.Type & NbdProtocol.ReplyTypeErrorBit) == 0)
        {
            throw Violation($"a reply chunk has type {h.Type}, which does not belong to this request");
        }

        if (h.Length < 6 || h.Length > MaxErrorChunk)
        {
            throw Violation($"an error chunk is {h.Length} bytes long");
        }

        Span<byte> payload = stackalloc byte[MaxErrorChunk];
        payload = payload[..(int)h.Length];
        _stream.ReadExactly(payload);
        uint error = BinaryPrimitives.ReadUInt32BigEndian(payload);
        int messageLength = BinaryPrimitives.ReadUInt16BigEndian(payload[4..]);
        int fixedTail = h.Type == NbdProtocol.ReplyTypeErrorOffset ? 8 : 0;
        if (messageLength > h.Length - 6 - fixedTail)
        {
            throw Violation("an error chunk's message is longer than the chunk");
        }

        string message = Encoding.UTF8.GetString(payload.Slice(6, messageLength));

        // An error chunk must carry an error; one saying 0 is still a failure, reported as EIO.
        return (error == 0 ? NbdProtocol.EIO : error, message.Length == 0 ? null : message);
    }

    private int Within(long at, int bytes, long offset, int length, string what)
    {
        if (at < offset || at - offset > length - bytes)
        {
            throw Violation($"a {what} chunk for bytes {at} to {at + bytes - 1} lies outside the read of {length} bytes at {offset}");
        }

        return (int)(at - offset);
    }

    private long ReadChunkOffset()
    {
        Span<byte> b = stackalloc byte[8];
        _stream.ReadExactly(b);
        ulong at = BinaryPrimitives.ReadUInt64BigEndian(b);
        return at > long.MaxValue / 2 ? throw Violation($"a chunk's offset {at} is absurd") : (long)at;
    }

    private uint ReadU32()
    {
        Span<byte> b = stackalloc byte[4];
        _stream.ReadExactly(b);
        return BinaryPrimitives.ReadUInt32BigEndian(b);
    }

    private void CheckCookie(ulong actual, ulong expected)
    {
        if (actual != expected)
        {
            throw Violation($"a reply carries cookie {actual} while the request in flight has {expected}");
        }
    }

    private void ThrowIfError(uint error, string? message, ushort command, long offset, long length)
    {
        if (error != 0)
        {
            throw new NbdServerErrorException(
                $"NBD server {_uri}: {NbdProtocol.CommandName(command)} of {length} bytes at {offset} failed: {NbdProtocol.ErrorName(error)}{(message is null ? string.Empty : ": " + message)}.",
                error);
        }
    }

    /// <summary>An IOException, not ObjectDisposedException: another thread may break the connection at any moment.</summary>
    private void ThrowIfBroken()
    {
        if (_broken)
        {
            throw new IOException($"NBD connection to {_uri} is closed (it failed, or was aborted).");
        }
    }

    private void CheckRequest(long offset, long length, bool payload)
    {
        ThrowIfBroken();
        if (offset < 0 || length < 0 || offset > Size - length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"Range {offset}+{length} is outside NBD export {_uri} of {Size} bytes.");
        }

        if ((payload && length > MaximumPayload) || length > uint.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(length), $"{length} bytes is more than one request to {_uri} may carry.");
        }

        if (offset % MinimumBlockSize != 0 || length % MinimumBlockSize != 0)
        {
            throw new ArgumentException($"Range {offset}+{length} is not aligned to {_uri}'s minimum block size of {MinimumBlockSize}.", nameof(offset));
        }
    }

    private bool Has(ushort flag) => (TransmissionFlags & flag) != 0;

    private void Break()
    {
        _broken = true;
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Not connected any more: closing is all that is left.
        }

        _stream.Dispose();
        _socket.Dispose();
    }

    private IOException AsIOException(Exception e, string doing) => e switch
    {
        NbdProtocolException or NbdServerErrorException => (IOException)e,
        IOException { InnerException: SocketException { SocketErrorCode: SocketError.TimedOut } } =>
            new IOException($"NBD server {_uri}: no answer within the I/O timeout while {doing}.", e),
        EndOfStreamException => new IOException($"NBD server {_uri} closed the connection while {doing}.", e),
        IOException io => new IOException($"NBD server {_uri}: connection failed while {doing}: {io.Message}", e),
        AuthenticationException or CryptographicException => new IOException($"NBD server {_uri}: TLS failed while {doing}: {e.Message}", e),
        _ => new IOException($"NBD server {_uri}: connection failed while {doing}: {e.Message}", e),
    };

    private NbdProtocolException Violation(string what) => new($"NBD server {_uri} broke the protocol: {what}.");

    private static string RepName(uint type) => type switch
    {
        NbdProtocol.RepErrUnsup => "unsupported",
        NbdProtocol.RepErrPolicy => "refused by policy",
        NbdProtocol.RepErrInvalid => "invalid",
        NbdProtocol.RepErrPlatform => "not on this platform",
        NbdProtocol.RepErrTlsReqd => "TLS required",
        NbdProtocol.RepErrUnknown => "unknown export",
        NbdProtocol.RepErrShutdown => "shutting down",
        NbdProtocol.RepErrTooBig => "too big",
        _ => $"reply {type:x}",
    };

    private static string Message(byte[] data) => data.Length == 0 ? string.Empty : ": " + Encoding.UTF8.GetString(data.AsSpan(0, Math.Min(data.Length, NbdProtocol.MaxString)));

    private readonly record struct ReplyHeader(bool Simple, uint Error, ushort Flags, ushort Type, uint Length);
}
