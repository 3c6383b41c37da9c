using System.Runtime.InteropServices;

namespace HostVM.Networking.Tap;

/// <summary>The libc calls a TAP device needs; .NET has no API for /dev/net/tun.</summary>
internal static unsafe partial class TunNative
{
    public const int OpenReadWrite = 0x2, OpenNonBlocking = 0x800, OpenCloseOnExec = 0x80000;
    public const int EventFdNonBlocking = 0x800, EventFdCloseOnExec = 0x80000;

    /// <summary>_IOW('T', 202, int): attach the descriptor to a (possibly new) tun/tap interface.</summary>
    public const ulong TunSetInterface = 0x400454ca;

    public const short InterfaceTap = 0x0002, InterfaceNoPacketInfo = 0x1000;

    /// <summary>IFNAMSIZ: 15 bytes of name and a NUL.</summary>
    public const int InterfaceNameSize = 16;

    /// <summary>struct ifreq is 40 bytes on 64-bit Linux: the name, then a union whose first member is the flags.</summary>
    public const int InterfaceRequestSize = 40;

    public const short PollIn = 0x1, PollErr = 0x8, PollHup = 0x10, PollNval = 0x20;

    public const int EPERM = 1, ENOENT = 2, EINTR = 4, EIO = 5, ENXIO = 6, EAGAIN = 11, EACCES = 13, EBUSY = 16, ENODEV = 19, EINVAL = 22;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, ulong request, byte* argument);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initialValue, int flags);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMilliseconds);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    /// <summary>struct pollfd.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short ReturnedEvents;
    }
}
