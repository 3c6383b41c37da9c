namespace HostVM.Host.Api;

/// <summary>A volume served over NBD: where, as which export, and the URI that reaches it (nbd://HOST:PORT/NAME).</summary>
public sealed record VolumeServing(string Volume, string Listen, string Export, string Uri, bool Writable, int Connections);
