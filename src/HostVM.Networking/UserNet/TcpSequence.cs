namespace HostVM.Networking.UserNet;

/// <summary>Comparisons of 32-bit TCP sequence numbers, which wrap (RFC 793 section 3.3).</summary>
internal static class TcpSequence
{
    public static bool Lt(uint a, uint b) => (int)(a - b) < 0;

    public static bool Le(uint a, uint b) => (int)(a - b) <= 0;

    public static bool Gt(uint a, uint b) => (int)(a - b) > 0;

    public static bool Ge(uint a, uint b) => (int)(a - b) >= 0;
}
