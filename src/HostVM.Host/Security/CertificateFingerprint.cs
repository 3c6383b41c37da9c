using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace HostVM.Host.Security;

/// <summary>
/// A certificate's SHA-256 fingerprint (of its DER encoding), written as openssl and Incus print it:
/// upper-case hex pairs joined by colons. Clients pin the daemon's certificate by it.
/// </summary>
public static class CertificateFingerprint
{
    /// <summary>The hex digits of a SHA-256 fingerprint.</summary>
    public const int HexLength = SHA256.HashSizeInBytes * 2;

    public static string Of(X509Certificate certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return Format(SHA256.HashData(certificate.GetRawCertData()));
    }

    public static string Format(ReadOnlySpan<byte> hash) => string.Join(':', Convert.ToHexString(hash).Chunk(2).Select(pair => new string(pair)));

    /// <summary>
    /// Reads a fingerprint as a person may paste it: any case, with or without colons (or spaces), optionally
    /// prefixed <c>sha256:</c>. Returns the canonical form, or null if it is not 32 bytes of hex.
    /// </summary>
    public static string? Normalize(string? text)
    {
        if (text is null)
        {
            return null;
        }

        string trimmed = text.Trim();
        if (trimmed.StartsWith("sha256:", StringComparison.OrdinalIgnoreCase))
        {
            trimmed = trimmed["sha256:".Length..];
        }

        string hex = new([.. trimmed.Where(c => c is not (':' or ' '))]);
        if (hex.Length != HexLength || !hex.All(char.IsAsciiHexDigit))
        {
            return null;
        }

        return Format(Convert.FromHexString(hex));
    }

    /// <summary>Whether <paramref name="certificate"/> is the one <paramref name="pin"/> names (in any form <see cref="Normalize"/> reads).</summary>
    public static bool Matches(X509Certificate certificate, string pin) =>
        Normalize(pin) is { } expected && string.Equals(Of(certificate), expected, StringComparison.Ordinal);
}
