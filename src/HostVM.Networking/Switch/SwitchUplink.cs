namespace HostVM.Networking.Switch;

/// <summary>
/// Joins a packet port that is not a VM's NIC, typically a <see cref="UserNet.UserNetwork"/>, to a switch as
/// one more port: what the switch delivers goes to the port's <see cref="IPacketPort.Send"/>, and what the port
/// produces goes onto the switch. So every guest on the switch shares one user-mode NAT (each with its own DHCP
/// lease) while still reaching the others directly.
/// </summary>
/// <remarks>
/// Threading: the switch port's receive thread calls the uplinked port's <c>Send</c>; the uplinked port calls
/// the switch port's <c>Send</c> from its own delivery threads (a user network delivers from one at a time).
/// </remarks>
public sealed class SwitchUplink : IDisposable
{
    private readonly SwitchPort _switchPort;
    private readonly IPacketPort _port;
    private readonly FrameRelay _fromSwitch;
    private readonly FrameRelay _toSwitch;
    private int _disposed;

    private SwitchUplink(SwitchPort switchPort, IPacketPort port)
    {
        _switchPort = switchPort;
        _port = port;
        _fromSwitch = new FrameRelay(port);
        _toSwitch = new FrameRelay(switchPort);
    }

    /// <summary>The switch this uplink is a port of.</summary>
    public string SwitchName => _switchPort.SwitchName;

    /// <summary>The uplink's socket file in the switch directory.</summary>
    public string SocketPath => _switchPort.SocketPath;

    public bool IsOpen => Volatile.Read(ref _disposed) == 0;

    public SwitchUplinkStatistics Statistics => new(
        _fromSwitch.Frames, _fromSwitch.Bytes, _toSwitch.Frames, _toSwitch.Bytes, _switchPort.DroppedFrames);

    /// <summary>
    /// Joins <paramref name="port"/> to switch <paramref name="switchName"/> (created if this is its first port) and
    /// starts forwarding both ways. Once this returns, the uplink owns <paramref name="port"/>: disposing the uplink disposes it.
    /// <paramref name="runtimeDirectory"/> is as for <see cref="SwitchPort.Open"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The switch name is not valid.</exception>
    /// <exception cref="IOException">The switch directory, socket or (for a user network) reservation file cannot be created.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="port"/> was already started (it delivers to one receiver only).</exception>
    public static SwitchUplink Open(string switchName, IPacketPort port, string? runtimeDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(port);
        var switchPort = SwitchPort.Open(switchName, runtimeDirectory);
        var uplink = new SwitchUplink(switchPort, port);
        try
        {
            port.Start(uplink._toSwitch);
            if (port is UserNet.UserNetwork nat)
            {
                // Once the port is ours (a refused one leaves nothing behind) and before the NAT hears anyone:
                // ports that join from now on refuse guests' claims to its addresses.
                nat.Reservation.WriteTo(switchPort.SwitchDirectory);
            }

            switchPort.Start(uplink._fromSwitch);
        }
        catch
        {
            switchPort.Dispose();
            throw;
        }

        return uplink;
    }

    /// <summary>Leaves the switch (its socket file is removed) and disposes the uplinked port.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // The switch side first: nothing more reaches the port once it is being torn down.
        _switchPort.Dispose();
        _port.Dispose();
    }

    public override string ToString() => $"uplink on switch '{SwitchName}'";
}
