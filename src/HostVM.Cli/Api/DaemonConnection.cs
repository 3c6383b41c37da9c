namespace HostVM.Cli.Api;

/// <summary>How to talk to the daemon: where it is, the API token to send (if any), and the certificate fingerprint to pin (if any).</summary>
/// <param name="Address">The daemon's address.</param>
/// <param name="Token">Sent as <c>Authorization: Bearer</c>; null sends none (the Unix socket needs none).</param>
/// <param name="Fingerprint">The SHA-256 fingerprint (AB:CD:…) the daemon's certificate must have; null: the system's CAs decide.</param>
public sealed record DaemonConnection(DaemonAddress Address, string? Token = null, string? Fingerprint = null);
