using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace HostVM.Networking.Switch;

/// <summary>
/// One port of a learning Ethernet switch shared by VMs on this host, in this or other processes, with no
/// daemon. The switch is a directory (see <see cref="SwitchLocation"/>); each port binds a Unix datagram
/// socket file in it. A frame to a learned unicast MAC goes to that one socket; anything else (broadcast,
/// multicast, unknown unicast) goes to every other socket in the directory. Each datagram is one Ethernet
/// frame, nothing added: the kernel tells the receiver the sender's socket path (recvfrom), which is both
/// what it learns source MACs against and cannot be forged by the sender, so no header is needed.
/// </summary>
public sealed class SwitchPort : IPacketPort
{
    /// <summary>How long a learned MAC is trusted without being seen again.</summary>
    public static readonly TimeSpan MacAgeLimit = TimeSpan.FromSeconds(300);

    private const int EthernetHeaderSize = 14;
    private const int PollMicroseconds = 100_000;

    // A receiver's queue holds only net.unix.max_dgram_qlen datagrams (10 by default); its reader
    // usually drains it within microseconds, so a full queue is worth a short wait before dropping.
    private static readonly long FullQueueWaitTicks = Stopwatch.Frequency / 1000;

    private readonly Socket socket;
    private readonly PeerDirectory peers;
    private readonly MacLearningTable macs = new(MacAgeLimit);
    private readonly SwitchReservation? reservation;
    private Thread? receiveThread;
    private IFrameReceiver? receiver;
    private volatile bool disposed;
    private long droppedFrames;
    private long queueWaits;
    private long falseClaims;

    private SwitchPort(string switchName, string directory, string socketPath, Socket socket)
    {
        SwitchName = switchName;
        SwitchDirectory = directory;
        SocketPath = socketPath;
        this.socket = socket;
        peers = new PeerDirectory(directory, socketPath);
        reservation = SwitchReservation.ReadFrom(directory);
    }

    public string SwitchName { get; }

    /// <summary>The directory that is the switch.</summary>
    public string SwitchDirectory { get; }

    /// <summary>This port's socket file.</summary>
    public string SocketPath { get; }

    public bool LinkUp => !disposed;

    /// <summary>Frames not delivered: malformed, too large, or a peer's queue stayed full.</summary>
    public long DroppedFrames => Interlocked.Read(ref droppedFrames);

    /// <summary>
    /// ARP frames dropped for claiming an address the switch reserves for its NAT (<see cref="SwitchReservation"/>),
    /// whether this port's guest sent them or a peer did; they count in <see cref="DroppedFrames"/> too.
    /// </summary>
    public long FalseClaims => Interlocked.Read(ref falseClaims);

    /// <summary>Sends that waited for a peer's full queue to drain (a congested peer is not waited for again).</summary>
    internal long QueueWaits => Interlocked.Read(ref queueWaits);

    internal int LearnedMacCount => macs.Count;

    /// <summary>
    /// Joins switch <paramref name="switchName"/>, creating it if this is its first port.
    /// <paramref name="runtimeDirectory"/> overrides where switches live (see <see cref="SwitchLocation.RuntimeDirectory"/>).
    /// </summary>
    /// <exception cref="ArgumentException">The switch name is not valid.</exception>
    /// <exception cref="IOException">The switch directory cannot be created or its path is too long for a socket.</exception>
    public static SwitchPort Open(string switchName, string? runtimeDirectory = null)
    {
        string directory = SwitchLocation.EnsureSwitchDirectory(switchName, runtimeDirectory);
        string socketPath = Path.Combine(directory, $"{Environment.ProcessId}-{Convert.ToHexStringLower(KernelRandom.GetBytes(4))}{PeerDirectory.SocketSuffix}");
        UnixDomainSocketEndPoint endPoint;
        try
        {
            endPoint = new UnixDomainSocketEndPoint(socketPath);
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new IOException(
                $"Switch socket path '{socketPath}' is too long for a Unix socket (at most 107 bytes): set {SwitchLocation.RuntimeDirectoryVariable} to a shorter directory.", e);
        }

        var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        try
        {
            socket.Bind(endPoint);
            ShareLikeDirectory(directory, socketPath);

            // Send must never wait on a peer for long, and the receive loop polls so Dispose can stop it.
            socket.Blocking = false;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new IOException($"Cannot bind switch socket '{socketPath}': {e.Message}.", e);
        }

        return new SwitchPort(switchName, directory, socketPath, socket);
    }

    /// <summary>
    /// Under a umask of 077 a port's socket is its owner's alone, which is right for a switch one user's VMs share. A
    /// switch whose directory its group may write (the daemon's, shared by jailed VMMs that each run as their own uid
    /// in one group) needs the group to reach every port: then the socket gets the directory's group permissions.
    /// </summary>
    private static void ShareLikeDirectory(string directory, string socketPath)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        const UnixFileMode groupReadWrite = UnixFileMode.GroupRead | UnixFileMode.GroupWrite;
        if ((File.GetUnixFileMode(directory) & (UnixFileMode.GroupWrite | UnixFileMode.GroupExecute)) == (UnixFileMode.GroupWrite | UnixFileMode.GroupExecute))
        {
            File.SetUnixFileMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite | groupReadWrite);
        }
    }

    public void Start(IFrameReceiver receiver)
    {
        ArgumentNullException.ThrowIfNull(receiver);
        ObjectDisposedException.ThrowIf(disposed, this);
        if (Interlocked.CompareExchange(ref this.receiver, receiver, null) is not null)
        {
            throw new InvalidOperationException("The switch port is already started.");
        }

        receiveThread = new Thread(ReceiveLoop)
        {
            IsBackground = true,
            Name = $"switch {SwitchName} port",
        };
        receiveThread.Start();
    }

    public void Send(ReadOnlySpan<byte> frame)
    {
        if (disposed)
        {
            return;
        }

        if (frame.Length < EthernetHeaderSize || frame.Length > IPacketPort.MaxFrameSize || IsFalseClaim(frame))
        {
            Interlocked.Increment(ref droppedFrames);
            return;
        }

        var destination = MacAddress.FromBytes(frame);
        long now = Environment.TickCount64;
        if (!destination.IsMulticast && macs.TryLookup(destination, now, out var peer) && SendTo(frame, peer!))
        {
            return;
        }

        // Broadcast, multicast, unknown unicast, or the learned port just vanished: flood.
        foreach (var other in peers.Current(now))
        {
            SendTo(frame, other);
        }
    }

    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        if (receiveThread is not null && receiveThread != Thread.CurrentThread)
        {
            receiveThread.Join(TimeSpan.FromSeconds(2));
        }

        socket.Dispose();
        try
        {
            File.Delete(SocketPath);
        }
        catch (IOException)
        {
            // Already gone, or the directory went away: either way nobody can send here any more.
        }
    }

    public override string ToString() => $"switch '{SwitchName}' port {Path.GetFileName(SocketPath)}";

    /// <summary>Sends to one peer; false when the peer no longer exists (it is then forgotten).</summary>
    private bool SendTo(ReadOnlySpan<byte> frame, SwitchPeer peer)
    {
        long giveUpAt = 0;
        while (true)
        {
            try
            {
                socket.SendTo(frame, SocketFlags.None, peer.Address);
                peer.Congested = false;
                return true;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.WouldBlock)
            {
                long now = Stopwatch.GetTimestamp();
                if (giveUpAt == 0 && !peer.Congested)
                {
                    giveUpAt = now + FullQueueWaitTicks;
                    Interlocked.Increment(ref queueWaits);
                }
                else if (giveUpAt == 0 || now > giveUpAt)
                {
                    peer.Congested = true;
                    Interlocked.Increment(ref droppedFrames);
                    return true;
                }

                Thread.Yield();
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
            {
                // The file is there but nothing is bound to it: its process died without cleaning up.
                Forget(peer, deleteSocketFile: true);
                return false;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.AddressNotAvailable or SocketError.ProtocolType or SocketError.NotSocket)
            {
                // The file is gone (ENOENT), or is not one of ours.
                Forget(peer, deleteSocketFile: false);
                return false;
            }
            catch (SocketException)
            {
                // Out of buffer space and the like: a lost frame, as on any network.
                Interlocked.Increment(ref droppedFrames);
                return true;
            }
            catch (ObjectDisposedException)
            {
                return true;
            }
        }
    }

    private void Forget(SwitchPeer peer, bool deleteSocketFile)
    {
        macs.Forget(peer.SocketPath);
        peers.Forget(peer.SocketPath);
        if (deleteSocketFile)
        {
            try
            {
                File.Delete(peer.SocketPath);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Another port may have deleted it first, or it belongs to someone else; it stays forgotten.
            }
        }
    }

    private void ReceiveLoop()
    {
        // One more byte than the largest frame, so an oversized datagram shows up as too long (the kernel
        // truncates it to the buffer) and is dropped rather than passed on cut short.
        var buffer = new byte[IPacketPort.MaxFrameSize + 1];
        var from = new SocketAddress(AddressFamily.Unix, 128);
        int fromCapacity = from.Size;
        while (!disposed)
        {
            try
            {
                if (!socket.Poll(PollMicroseconds, SelectMode.SelectRead))
                {
                    continue;
                }
            }
            catch (ObjectDisposedException)
            {
                return;
            }

            while (!disposed)
            {
                int length;
                try
                {
                    // ReceiveFrom shrinks Size to the address it got; give it the full buffer every time.
                    from.Size = fromCapacity;
                    length = socket.ReceiveFrom(buffer, SocketFlags.None, from);
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.WouldBlock)
                {
                    break;
                }
                catch (SocketException)
                {
                    Interlocked.Increment(ref droppedFrames);
                    break;
                }
                catch (ObjectDisposedException)
                {
                    return;
                }

                try
                {
                    Deliver(buffer.AsSpan(0, length), from);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // A receiver's fault costs that frame, not this thread: in the daemon it carries
                    // every guest's frames to a network's NAT, and an exception here would end the process.
                    Interlocked.Increment(ref droppedFrames);
                }
            }
        }
    }

    /// <summary>A guest's ARP claiming the NAT's gateway or DNS address: counted here, dropped by the caller.</summary>
    private bool IsFalseClaim(ReadOnlySpan<byte> frame)
    {
        if (reservation is null || !reservation.IsFalseClaim(frame))
        {
            return false;
        }

        Interlocked.Increment(ref falseClaims);
        return true;
    }

    private void Deliver(ReadOnlySpan<byte> frame, SocketAddress from)
    {
        // Anything might arrive here (any process of this user can write to the socket): check before use.
        if (frame.Length < EthernetHeaderSize || frame.Length > IPacketPort.MaxFrameSize)
        {
            Interlocked.Increment(ref droppedFrames);
            return;
        }

        var sender = peers.FromAddress(from);
        if (sender is null || sender.SocketPath == SocketPath || IsFalseClaim(frame))
        {
            Interlocked.Increment(ref droppedFrames);
            return;
        }

        var source = MacAddress.FromBytes(frame[6..]);
        if (!source.IsMulticast)
        {
            macs.Learn(source, sender, Environment.TickCount64);
        }

        receiver!.Receive(frame);
    }
}
