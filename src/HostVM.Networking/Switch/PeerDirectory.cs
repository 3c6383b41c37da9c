using System.Net;
using System.Net.Sockets;
using System.Text;

namespace HostVM.Networking.Switch;

/// <summary>
/// The other ports of a switch, as the socket files in its directory. Flooding needs the full list, so it is
/// re-read at most every <see cref="RescanMilliseconds"/> (a new port is reached within that delay; one that
/// talks first is learned at once). Receiving maps a sender's address back to a peer, and only senders whose
/// socket is in this directory count: anything else is not part of the switch.
/// </summary>
internal sealed class PeerDirectory
{
    public const long RescanMilliseconds = 1000;
    public const string SocketSuffix = ".sock";

    private readonly string directory;
    private readonly string ownPath;
    private readonly Dictionary<string, SwitchPeer> byPath = new(StringComparer.Ordinal);
    private readonly Dictionary<SocketAddress, SwitchPeer> byAddress = new(SocketAddressComparer.Instance);
    private SwitchPeer[] current = [];
    private long? scannedAt;

    public PeerDirectory(string directory, string ownPath)
    {
        this.directory = directory;
        this.ownPath = ownPath;
    }

    /// <summary>Every other port, from a listing at most <see cref="RescanMilliseconds"/> old.</summary>
    public SwitchPeer[] Current(long nowMilliseconds)
    {
        lock (byPath)
        {
            if (scannedAt is not { } last || nowMilliseconds - last >= RescanMilliseconds)
            {
                Rescan();
                scannedAt = nowMilliseconds;
            }

            return current;
        }
    }

    /// <summary>The peer that sent from <paramref name="address"/>, or null when it is not a port of this switch.</summary>
    public SwitchPeer? FromAddress(SocketAddress address)
    {
        lock (byPath)
        {
            if (byAddress.TryGetValue(address, out var known))
            {
                return known;
            }

            string? path = DecodePath(address);
            if (path is null || !IsPortSocket(path))
            {
                return null;
            }

            var peer = GetOrAdd(path);
            if (peer is not null && path != ownPath)
            {
                // A port heard from is flooded to from now on, without waiting for the next listing.
                if (Array.IndexOf(current, peer) < 0)
                {
                    current = [.. current, peer];
                }
            }

            return peer;
        }
    }

    /// <summary>The port behind <paramref name="socketPath"/> is gone: stop sending to it.</summary>
    public void Forget(string socketPath)
    {
        lock (byPath)
        {
            if (byPath.Remove(socketPath, out var peer))
            {
                byAddress.Remove(peer.Address);
                current = Array.FindAll(current, p => p.SocketPath != socketPath);
            }
        }
    }

    private void Rescan()
    {
        var found = new List<SwitchPeer>();
        try
        {
            foreach (string path in Directory.EnumerateFiles(directory, "*" + SocketSuffix))
            {
                if (path != ownPath && GetOrAdd(path) is { } peer)
                {
                    found.Add(peer);
                }
            }
        }
        catch (DirectoryNotFoundException)
        {
            // Someone removed the switch directory; this port can still receive but has nobody to send to.
        }

        current = [.. found];
    }

    private SwitchPeer? GetOrAdd(string path)
    {
        if (byPath.TryGetValue(path, out var peer))
        {
            return peer;
        }

        SocketAddress address;
        try
        {
            address = new UnixDomainSocketEndPoint(path).Serialize();
        }
        catch (ArgumentOutOfRangeException)
        {
            // Longer than a socket address can hold: no port could have bound it.
            return null;
        }

        peer = new SwitchPeer(path, address);
        byPath[path] = peer;
        byAddress[address] = peer;
        return peer;
    }

    private bool IsPortSocket(string path) =>
        path.EndsWith(SocketSuffix, StringComparison.Ordinal) &&
        string.Equals(Path.GetDirectoryName(path), directory, StringComparison.Ordinal) &&
        !path.Contains("/../", StringComparison.Ordinal);

    /// <summary>The path in a sockaddr_un, or null for an unnamed or abstract sender.</summary>
    private static string? DecodePath(SocketAddress address)
    {
        // sockaddr_un: a 2-byte family, then the path (NUL-terminated, or not when it fills the buffer).
        if (address.Family != AddressFamily.Unix || address.Size <= 2)
        {
            return null;
        }

        ReadOnlySpan<byte> bytes = address.Buffer.Span[2..address.Size];
        if (bytes[0] == 0)
        {
            return null;
        }

        int end = bytes.IndexOf((byte)0);
        if (end >= 0)
        {
            bytes = bytes[..end];
        }

        return Encoding.UTF8.GetString(bytes);
    }
}
