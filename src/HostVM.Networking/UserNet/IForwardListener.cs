namespace HostVM.Networking.UserNet;

/// <summary>A bound host socket of one <see cref="HostForward"/>, TCP or UDP: what <see cref="UserNetwork"/> adds and removes while it runs.</summary>
internal interface IForwardListener : IDisposable
{
    /// <summary>The forward with its actual host port.</summary>
    HostForward Bound { get; }
}
