namespace HostVM.Cli.Api;

/// <summary>No connection to the daemon could be made (refused, no such socket, timed out); <see cref="Reason"/> says which.</summary>
public sealed class DaemonUnreachableException(DaemonAddress address, string reason, Exception? inner = null)
    : Exception($"cannot reach the daemon at {address.Text} ({reason})", inner)
{
    public DaemonAddress Address { get; } = address;

    public string Reason { get; } = reason;
}
