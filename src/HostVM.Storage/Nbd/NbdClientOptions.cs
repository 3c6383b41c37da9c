namespace HostVM.Storage.Nbd;

/// <summary>
/// How long an NBD client waits and how often it tries again. With the defaults a request to a server that is gone
/// fails within about five seconds (four reconnects, 0.25 s doubling to 2 s apart), and a server that accepted a request
/// and went silent fails it after <see cref="IoTimeout"/> per attempt: the guest sees an I/O error, never a hung disk.
/// </summary>
public sealed record NbdClientOptions
{
    public static NbdClientOptions Default { get; } = new();

    /// <summary>Resolving the host and connecting, each attempt.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Any one send or receive on an open connection (a handshake step, a request, a reply).</summary>
    public TimeSpan IoTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How many times a request that lost its connection is tried again on a new one.</summary>
    public int Retries { get; init; } = 4;

    /// <summary>The wait before the first retry; each later one waits twice as long.</summary>
    public TimeSpan FirstRetryDelay { get; init; } = TimeSpan.FromMilliseconds(250);
}
