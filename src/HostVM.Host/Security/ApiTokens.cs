using System.Security.Cryptography;
using System.Text;

namespace HostVM.Host.Security;

/// <summary>
/// The token format, <c>hvt_ID_SECRET</c>: a 16-hex-digit id (looked up) and a 256-bit random secret (base64url).
/// Only SHA-256 of the secret is stored: the secret has full entropy, so a slow password hash adds nothing,
/// and a stolen inventory gives no usable token. Hashes are compared in constant time.
/// </summary>
public static class ApiTokens
{
    public const string Prefix = "hvt_";

    private const int IdBytes = 8;
    private const int SecretBytes = 32;

    /// <summary>A new token: its id, the whole token (shown once) and the hash to store.</summary>
    public static (string Id, string Token, byte[] Hash) Create()
    {
        string id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(IdBytes));
        string secret = Base64Url(RandomNumberGenerator.GetBytes(SecretBytes));
        return (id, $"{Prefix}{id}_{secret}", Hash(secret));
    }

    /// <summary>Splits a presented token into id and secret; false when it does not have the shape of one.</summary>
    public static bool TryParse(string token, out string id, out string secret)
    {
        id = secret = string.Empty;
        if (!token.StartsWith(Prefix, StringComparison.Ordinal) || token.Length > 128)
        {
            return false;
        }

        int split = token.IndexOf('_', Prefix.Length);
        if (split != Prefix.Length + (IdBytes * 2) || split == token.Length - 1)
        {
            return false;
        }

        id = token[Prefix.Length..split];
        secret = token[(split + 1)..];
        return id.All(char.IsAsciiHexDigitLower);
    }

    public static byte[] Hash(string secret) => SHA256.HashData(Encoding.UTF8.GetBytes(secret));

    /// <summary>Whether <paramref name="secret"/> hashes to <paramref name="storedHash"/>, in time independent of where they differ.</summary>
    public static bool Matches(string secret, ReadOnlySpan<byte> storedHash) =>
        CryptographicOperations.FixedTimeEquals(Hash(secret), storedHash);

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
