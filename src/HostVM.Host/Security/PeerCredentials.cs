using System.Net.Sockets;
using System.Runtime.InteropServices;
using HostVM.Vmm;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace HostVM.Host.Security;

/// <summary>
/// Who is at the other end of a Unix socket, as the kernel says (SO_PEERCRED: the user that connected, which
/// no request can claim otherwise). The daemon's socket makes its caller the host's admin without a token, so
/// a connection from any user but the daemon's own, or root, is closed before a byte of it is read: a socket
/// mode set wrong, or a directory made by someone else, must not be enough to reach it.
/// </summary>
public static class PeerCredentials
{
    private const int SolSocket = 1; // SOL_SOCKET
    private const int SoPeerCred = 17; // SO_PEERCRED: struct ucred { pid_t pid; uid_t uid; gid_t gid; }

    /// <summary>The user id of the process that connected <paramref name="socket"/>; null if the kernel does not say.</summary>
    public static uint? UserOf(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        Span<byte> credentials = stackalloc byte[12];
        try
        {
            return socket.GetRawSocketOption(SolSocket, SoPeerCred, credentials) >= 12 ? MemoryMarshal.Read<uint>(credentials[4..]) : null;
        }
        catch (SocketException)
        {
            return null;
        }
    }

    /// <summary>Kestrel connection middleware: passes on connections from this process's user or root, closes the rest.</summary>
    public static ConnectionDelegate OwnerOrRootOnly(ConnectionDelegate next) => connection =>
    {
        var socket = connection.Features.Get<IConnectionSocketFeature>()?.Socket;
        if (socket is not null && UserOf(socket) is { } user && OwnerOnly.IsTrustedOwner(user))
        {
            return next(connection);
        }

        connection.Abort(new ConnectionAbortedException("the peer is neither the daemon's user nor root"));
        return Task.CompletedTask;
    };
}
