using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace HostVM.Networking.Tap;

/// <summary>
/// A port onto a Linux TAP interface: frames the guest sends appear on the host interface, and frames the
/// host sends out of it reach the guest. The host decides what the interface connects to (a bridge, routing,
/// nothing). A thread polls the TAP and an eventfd, so Dispose wakes it at once instead of waiting for traffic.
/// </summary>
public sealed unsafe class TapPort : IPacketPort
{
    private const int ReadBufferSize = 65536;

    private readonly SafeFileHandle tap;
    private readonly SafeFileHandle wake;
    private Thread? receiveThread;
    private IFrameReceiver? receiver;
    private volatile bool disposed;
    private long droppedFrames;

    private TapPort(string interfaceName, SafeFileHandle tap, SafeFileHandle wake)
    {
        InterfaceName = interfaceName;
        this.tap = tap;
        this.wake = wake;
    }

    /// <summary>The host interface, as the kernel named it.</summary>
    public string InterfaceName { get; }

    public bool LinkUp => !disposed;

    /// <summary>Frames not delivered: too large for the guest, or the host interface refused them (down, busy).</summary>
    public long DroppedFrames => Interlocked.Read(ref droppedFrames);

    /// <summary>
    /// Attaches to TAP interface <paramref name="interfaceName"/>, creating it (needs CAP_NET_ADMIN) unless it
    /// is a persistent TAP this user may use (<c>ip tuntap add dev NAME mode tap user $USER</c>).
    /// A non-persistent interface disappears when the port is disposed.
    /// </summary>
    /// <exception cref="ArgumentException">The name is empty, longer than 15 bytes, or has '/', ':' or white space.</exception>
    /// <exception cref="IOException">The TAP cannot be opened; the message says why and what to do.</exception>
    public static TapPort Open(string interfaceName)
    {
        ValidateName(interfaceName);
        int fd = TunNative.Open("/dev/net/tun", TunNative.OpenReadWrite | TunNative.OpenNonBlocking | TunNative.OpenCloseOnExec);
        if (fd < 0)
        {
            throw new IOException(DescribeOpenError(Marshal.GetLastPInvokeError(), interfaceName));
        }

        var tap = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            string actualName = Attach(fd, interfaceName);
            int eventFd = TunNative.EventFd(0, TunNative.EventFdNonBlocking | TunNative.EventFdCloseOnExec);
            if (eventFd < 0)
            {
                throw new IOException($"Cannot create an eventfd for TAP '{interfaceName}': {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
            }

            return new TapPort(actualName, tap, new SafeFileHandle(eventFd, ownsHandle: true));
        }
        catch
        {
            tap.Dispose();
            throw;
        }
    }

    public void Start(IFrameReceiver receiver)
    {
        ArgumentNullException.ThrowIfNull(receiver);
        ObjectDisposedException.ThrowIf(disposed, this);
        if (Interlocked.CompareExchange(ref this.receiver, receiver, null) is not null)
        {
            throw new InvalidOperationException("The TAP port is already started.");
        }

        receiveThread = new Thread(ReceiveLoop)
        {
            IsBackground = true,
            Name = $"tap {InterfaceName}",
        };
        receiveThread.Start();
    }

    public void Send(ReadOnlySpan<byte> frame)
    {
        if (disposed || frame.Length > IPacketPort.MaxFrameSize || frame.Length < 14)
        {
            Interlocked.Increment(ref droppedFrames);
            return;
        }

        bool added = false;
        try
        {
            tap.DangerousAddRef(ref added);
            nint written;
            fixed (byte* p = frame)
            {
                do
                {
                    written = TunNative.Write((int)tap.DangerousGetHandle(), p, (nuint)frame.Length);
                }
                while (written < 0 && Marshal.GetLastPInvokeError() == TunNative.EINTR);
            }

            // EAGAIN (the interface's queue is full) and EIO (the host has not set it up) lose the frame,
            // as a cable into a switched-off port would.
            if (written != frame.Length)
            {
                Interlocked.Increment(ref droppedFrames);
            }
        }
        catch (ObjectDisposedException)
        {
            Interlocked.Increment(ref droppedFrames);
        }
        finally
        {
            if (added)
            {
                tap.DangerousRelease();
            }
        }
    }

    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        if (receiveThread is not null)
        {
            ulong one = 1;
            _ = TunNative.Write((int)wake.DangerousGetHandle(), (byte*)&one, sizeof(ulong));
            if (receiveThread != Thread.CurrentThread)
            {
                receiveThread.Join();
            }
        }

        tap.Dispose();
        wake.Dispose();
    }

    public override string ToString() => $"TAP {InterfaceName}";

    /// <summary>What went wrong opening /dev/net/tun or attaching to the interface, and what to do about it.</summary>
    internal static string DescribeOpenError(int errno, string interfaceName) => errno switch
    {
        TunNative.ENOENT =>
            "/dev/net/tun does not exist: load the tun module ('modprobe tun'), or in a container pass the device in (docker run --device /dev/net/tun).",
        TunNative.ENODEV or TunNative.ENXIO =>
            "/dev/net/tun exists but the kernel has no tun driver: load the tun module ('modprobe tun').",
        TunNative.EACCES or TunNative.EPERM =>
            $"Permission denied opening TAP '{interfaceName}': creating a TAP needs CAP_NET_ADMIN. Either run with that capability, or create a persistent TAP owned by this user once: 'sudo ip tuntap add dev {interfaceName} mode tap user $USER' (and make /dev/net/tun readable and writable by the user, as most distributions do).",
        TunNative.EBUSY =>
            $"TAP '{interfaceName}' is already in use by another process: a TAP has one reader; stop the other VM or pick another interface name.",
        TunNative.EINVAL =>
            $"Cannot attach to '{interfaceName}': an interface of that name exists and is not a TAP (or was created with other flags, e.g. with packet information): pick another name, or recreate it with 'ip tuntap add dev {interfaceName} mode tap'.",
        _ => $"Cannot open TAP '{interfaceName}': {Marshal.GetPInvokeErrorMessage(errno)}.",
    };

    private static void ValidateName(string interfaceName)
    {
        ArgumentNullException.ThrowIfNull(interfaceName);
        int bytes = Encoding.UTF8.GetByteCount(interfaceName);
        if (bytes == 0 || bytes >= TunNative.InterfaceNameSize)
        {
            throw new ArgumentException(
                $"Interface name '{interfaceName}' is {bytes} bytes long; Linux interface names are 1 to {TunNative.InterfaceNameSize - 1} bytes.", nameof(interfaceName));
        }

        if (interfaceName is "." or ".." || interfaceName.Any(c => c is '/' or ':' || char.IsWhiteSpace(c) || char.IsControl(c)))
        {
            throw new ArgumentException(
                $"Interface name '{interfaceName}' is not valid on Linux: it cannot contain '/', ':' or white space, or be '.' or '..'.", nameof(interfaceName));
        }
    }

    private static string Attach(int fd, string interfaceName)
    {
        byte* request = stackalloc byte[TunNative.InterfaceRequestSize];
        new Span<byte>(request, TunNative.InterfaceRequestSize).Clear();
        Encoding.UTF8.GetBytes(interfaceName, new Span<byte>(request, TunNative.InterfaceNameSize - 1));

        // IFF_NO_PI: frames carry no 4-byte packet-information prefix, so a read is exactly one Ethernet frame.
        *(short*)(request + TunNative.InterfaceNameSize) = TunNative.InterfaceTap | TunNative.InterfaceNoPacketInfo;
        if (TunNative.Ioctl(fd, TunNative.TunSetInterface, request) < 0)
        {
            throw new IOException(DescribeOpenError(Marshal.GetLastPInvokeError(), interfaceName));
        }

        var name = new ReadOnlySpan<byte>(request, TunNative.InterfaceNameSize);
        int end = name.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? name : name[..end]);
    }

    private void ReceiveLoop()
    {
        var buffer = new byte[ReadBufferSize];
        bool tapAdded = false, wakeAdded = false;
        try
        {
            // Held for the thread's life, so Dispose cannot close (and the OS reuse) the descriptors under it.
            tap.DangerousAddRef(ref tapAdded);
            wake.DangerousAddRef(ref wakeAdded);
            int tapFd = (int)tap.DangerousGetHandle();
            var fds = stackalloc TunNative.PollFd[2];
            fds[0] = new TunNative.PollFd { Fd = tapFd, Events = TunNative.PollIn };
            fds[1] = new TunNative.PollFd { Fd = (int)wake.DangerousGetHandle(), Events = TunNative.PollIn };
            while (!disposed)
            {
                fds[0].ReturnedEvents = 0;
                fds[1].ReturnedEvents = 0;
                int ready = TunNative.Poll(fds, 2, -1);
                if (ready < 0)
                {
                    if (Marshal.GetLastPInvokeError() == TunNative.EINTR)
                    {
                        continue;
                    }

                    return;
                }

                if (fds[1].ReturnedEvents != 0 || (fds[0].ReturnedEvents & (TunNative.PollErr | TunNative.PollHup | TunNative.PollNval)) != 0)
                {
                    return;
                }

                if ((fds[0].ReturnedEvents & TunNative.PollIn) != 0)
                {
                    DrainFrames(tapFd, buffer);
                }
            }
        }
        finally
        {
            if (tapAdded)
            {
                tap.DangerousRelease();
            }

            if (wakeAdded)
            {
                wake.DangerousRelease();
            }
        }
    }

    private void DrainFrames(int tapFd, byte[] buffer)
    {
        while (!disposed)
        {
            nint length;
            fixed (byte* p = buffer)
            {
                length = TunNative.Read(tapFd, p, (nuint)buffer.Length);
            }

            if (length < 0)
            {
                // EAGAIN: drained. Anything else is retried at the next poll.
                return;
            }

            // The host may give the interface an MTU above 1500; the guest's NIC cannot take such frames.
            if (length is < 14 or > IPacketPort.MaxFrameSize)
            {
                Interlocked.Increment(ref droppedFrames);
                continue;
            }

            receiver!.Receive(buffer.AsSpan(0, (int)length));
        }
    }
}
