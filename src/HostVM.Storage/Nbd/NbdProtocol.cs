namespace HostVM.Storage.Nbd;

/// <summary>
/// The numbers of the NBD protocol (NetworkBlockDevice/nbd doc/proto.md), fixed newstyle negotiation with
/// structured replies; every field on the wire is big-endian. Kept in one place so client and server agree.
/// </summary>
internal static class NbdProtocol
{
    public const int DefaultPort = 10809;

    public const ulong InitMagic = 0x4e42444d41474943; // "NBDMAGIC"
    public const ulong OptionMagic = 0x49484156454F5054; // "IHAVEOPT"
    public const ulong OldstyleMagic = 0x0000420281861253;
    public const ulong OptionReplyMagic = 0x0003e889045565a9;
    public const uint RequestMagic = 0x25609513;
    public const uint SimpleReplyMagic = 0x67446698;
    public const uint StructuredReplyMagic = 0x668e33ef;

    // Handshake flags (server) and client flags.
    public const ushort FlagFixedNewstyle = 1 << 0;
    public const ushort FlagNoZeroes = 1 << 1;
    public const uint ClientFlagFixedNewstyle = 1 << 0;
    public const uint ClientFlagNoZeroes = 1 << 1;

    // Transmission flags.
    public const ushort FlagHasFlags = 1 << 0;
    public const ushort FlagReadOnly = 1 << 1;
    public const ushort FlagSendFlush = 1 << 2;
    public const ushort FlagSendFua = 1 << 3;
    public const ushort FlagSendTrim = 1 << 5;
    public const ushort FlagSendWriteZeroes = 1 << 6;
    public const ushort FlagCanMultiConn = 1 << 8;

    // Options.
    public const uint OptExportName = 1;
    public const uint OptAbort = 2;
    public const uint OptList = 3;
    public const uint OptStartTls = 5;
    public const uint OptInfo = 6;
    public const uint OptGo = 7;
    public const uint OptStructuredReply = 8;
    public const uint OptListMetaContext = 9;
    public const uint OptSetMetaContext = 10;

    // Option replies; errors have bit 31 set.
    public const uint RepAck = 1;
    public const uint RepServer = 2;
    public const uint RepInfo = 3;
    public const uint RepMetaContext = 4;
    public const uint RepErrorBit = 1u << 31;
    public const uint RepErrUnsup = RepErrorBit + 1;
    public const uint RepErrPolicy = RepErrorBit + 2;
    public const uint RepErrInvalid = RepErrorBit + 3;
    public const uint RepErrPlatform = RepErrorBit + 4;
    public const uint RepErrTlsReqd = RepErrorBit + 5;
    public const uint RepErrUnknown = RepErrorBit + 6;
    public const uint RepErrShutdown = RepErrorBit + 7;
    public const uint RepErrBlockSizeReqd = RepErrorBit + 8;
    public const uint RepErrTooBig = RepErrorBit + 9;

    // NBD_INFO types.
    public const ushort InfoExport = 0;
    public const ushort InfoName = 1;
    public const ushort InfoDescription = 2;
    public const ushort InfoBlockSize = 3;

    // Commands and their flags.
    public const ushort CmdRead = 0;
    public const ushort CmdWrite = 1;
    public const ushort CmdDisc = 2;
    public const ushort CmdFlush = 3;
    public const ushort CmdTrim = 4;
    public const ushort CmdCache = 5;
    public const ushort CmdWriteZeroes = 6;
    public const ushort CmdBlockStatus = 7;
    public const ushort CmdFlagFua = 1 << 0;
    public const ushort CmdFlagNoHole = 1 << 1;
    public const ushort CmdFlagDf = 1 << 2;
    public const ushort CmdFlagReqOne = 1 << 3;

    // Structured reply flags and chunk types; error chunks have bit 15 set.
    public const ushort ReplyFlagDone = 1 << 0;
    public const ushort ReplyTypeNone = 0;
    public const ushort ReplyTypeOffsetData = 1;
    public const ushort ReplyTypeOffsetHole = 2;
    public const ushort ReplyTypeBlockStatus = 5;
    public const ushort ReplyTypeErrorBit = 1 << 15;
    public const ushort ReplyTypeError = ReplyTypeErrorBit + 1;
    public const ushort ReplyTypeErrorOffset = ReplyTypeErrorBit + 2;

    // base:allocation flags.
    public const uint StateHole = 1 << 0;
    public const uint StateZero = 1 << 1;

    public const string AllocationContext = "base:allocation";

    // Error values.
    public const uint EPERM = 1;
    public const uint EIO = 5;
    public const uint ENOMEM = 12;
    public const uint EINVAL = 22;
    public const uint ENOSPC = 28;
    public const uint EOVERFLOW = 75;
    public const uint ENOTSUP = 95;
    public const uint ESHUTDOWN = 108;

    /// <summary>The longest string (export name, message) the protocol allows.</summary>
    public const int MaxString = 4096;

    /// <summary>The payload any peer must accept (2^25): HostVM's cap on a read or write in either role.</summary>
    public const int MaxPayload = 32 * 1024 * 1024;

    /// <summary>Extents a block status chunk should not exceed (2^20).</summary>
    public const int MaxExtents = 1 << 20;

    public static string ErrorName(uint error) => error switch
    {
        EPERM => "EPERM (operation not permitted)",
        EIO => "EIO (input/output error)",
        ENOMEM => "ENOMEM (out of memory)",
        EINVAL => "EINVAL (invalid argument)",
        ENOSPC => "ENOSPC (no space left)",
        EOVERFLOW => "EOVERFLOW (value too large)",
        ENOTSUP => "ENOTSUP (not supported)",
        ESHUTDOWN => "ESHUTDOWN (server shutting down)",
        _ => $"error {error}",
    };

    public static string OptionName(uint option) => option switch
    {
        OptExportName => "NBD_OPT_EXPORT_NAME",
        OptAbort => "NBD_OPT_ABORT",
        OptList => "NBD_OPT_LIST",
        OptStartTls => "NBD_OPT_STARTTLS",
        OptInfo => "NBD_OPT_INFO",
        OptGo => "NBD_OPT_GO",
        OptStructuredReply => "NBD_OPT_STRUCTURED_REPLY",
        OptListMetaContext => "NBD_OPT_LIST_META_CONTEXT",
        OptSetMetaContext => "NBD_OPT_SET_META_CONTEXT",
        _ => $"option {option}",
    };

    public static string CommandName(ushort command) => command switch
    {
        CmdRead => "read",
        CmdWrite => "write",
        CmdDisc => "disconnect",
        CmdFlush => "flush",
        CmdTrim => "trim",
        CmdWriteZeroes => "write-zeroes",
        CmdBlockStatus => "block status",
        _ => $"command {command}",
    };
}
