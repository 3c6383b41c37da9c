namespace HostVM.Storage.Nbd;

/// <summary>
/// Limits that keep an <see cref="NbdServer"/> safe from its clients: connections are capped (each holds at most one
/// 1 MiB transfer buffer), a client has <see cref="HandshakeTimeout"/> to finish negotiating, and once a request has
/// started its payload must arrive (and its reply be taken) within <see cref="IoTimeout"/>. An idle connection between
/// requests is left alone: a mounted disk may go quiet for hours.
/// </summary>
public sealed record NbdServerOptions
{
    public static NbdServerOptions Default { get; } = new();

    /// <summary>Connections served at once; one more is closed as soon as it is accepted.</summary>
    public int MaxConnections { get; init; } = 16;

    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    public TimeSpan IoTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The largest read or write one request may ask for (NBD's interoperable maximum, 32 MiB).</summary>
    public int MaxRequestBytes { get; init; } = NbdProtocol.MaxPayload;
}
