using HostVM.Host.Security;

namespace HostVM.Host.Api;

/// <summary>The answer to POST /v1/tokens: the token itself, which is never shown again, and its record.</summary>
public sealed record CreatedToken(string Token, TokenRecord Details);
