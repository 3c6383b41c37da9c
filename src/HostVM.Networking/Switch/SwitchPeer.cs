using System.Net;

namespace HostVM.Networking.Switch;

/// <summary>Another port of the same switch: the path of its socket file and that path as a socket address.</summary>
internal sealed class SwitchPeer(string socketPath, SocketAddress address)
{
    private volatile bool congested;

    public string SocketPath { get; } = socketPath;

    public SocketAddress Address { get; } = address;

    /// <summary>
    /// Its queue stayed full through a whole wait last time (its process is stopped, or was never started):
    /// until a send gets through again, frames to it are dropped at once instead of after another wait, so
    /// one stuck port cannot slow every flood.
    /// </summary>
    public bool Congested
    {
        get => congested;
        set => congested = value;
    }
}
