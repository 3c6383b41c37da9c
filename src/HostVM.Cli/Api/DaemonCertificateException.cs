using System.Net.Security;

namespace HostVM.Cli.Api;

/// <summary>
/// The daemon's certificate was not trusted: it is not the pinned one, or (with no pin) the system cannot
/// verify it, as with the self-signed certificate <c>hostvm serve</c> makes. <see cref="Seen"/> is its fingerprint,
/// for the user to compare with what <c>hostvm serve</c> printed.
/// </summary>
public sealed class DaemonCertificateException(DaemonAddress address, string seen, string? pinned, SslPolicyErrors errors, Exception? inner = null)
    : Exception(Describe(address, seen, pinned, errors), inner)
{
    public DaemonAddress Address { get; } = address;

    public string Seen { get; } = seen;

    public string? Pinned { get; } = pinned;

    /// <summary>What to do about it, a line of its own.</summary>
    public string Advice => Pinned is not null
        ? $"If the daemon's certificate was replaced on purpose and `hostvm serve` printed {Seen}, pin that (--fingerprint, HOSTVM_FINGERPRINT or `hostvm login`); otherwise this is not your daemon: do not connect."
        : $"If `hostvm serve` printed this fingerprint, pin it: --fingerprint {Seen} (or HOSTVM_FINGERPRINT, or `hostvm login {Address.Text}`).";

    private static string Describe(DaemonAddress address, string seen, string? pinned, SslPolicyErrors errors) => pinned is not null
        ? $"the daemon's certificate fingerprint is {seen}, not the pinned {pinned}: refusing to talk to {address.Text}."
        : $"the daemon's certificate at {address.Text} is not one this system trusts ({errors}); its SHA-256 fingerprint is {seen}.";
}
