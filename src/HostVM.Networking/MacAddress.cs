using System.Globalization;

namespace HostVM.Networking;

/// <summary>A 48-bit Ethernet address.</summary>
public readonly record struct MacAddress(ulong Value)
{
    public static readonly MacAddress Broadcast = new(0xffff_ffff_ffffUL);

    public bool IsMulticast => (Value >> 40 & 1) != 0;

    /// <summary>52:54:00 (QEMU's prefix, for locally administered use) and three random bytes, so two VMs on a switch differ.</summary>
    public static MacAddress Random()
    {
        Span<byte> b = stackalloc byte[3];
        KernelRandom.Fill(b);
        return new MacAddress(0x5254_0000_0000UL | ((ulong)b[0] << 16) | ((ulong)b[1] << 8) | b[2]);
    }

    public static MacAddress FromBytes(ReadOnlySpan<byte> bytes)
    {
        ulong v = 0;
        for (int i = 0; i < 6; i++)
        {
            v = (v << 8) | bytes[i];
        }

        return new MacAddress(v);
    }

    public void CopyTo(Span<byte> destination)
    {
        for (int i = 0; i < 6; i++)
        {
            destination[i] = (byte)(Value >> (40 - (8 * i)));
        }
    }

    /// <summary>Parses "52:54:00:12:34:56" (or with dashes).</summary>
    public static MacAddress Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Split(':', '-');
        if (parts.Length != 6)
        {
            throw new FormatException($"'{text}' is not a MAC address: write six hex bytes like 52:54:00:12:34:56.");
        }

        ulong v = 0;
        foreach (var part in parts)
        {
            if (part.Length is < 1 or > 2 || !byte.TryParse(part, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out byte b))
            {
                throw new FormatException($"'{text}' is not a MAC address: '{part}' is not a hex byte.");
            }

            v = (v << 8) | b;
        }

        return new MacAddress(v);
    }

    public override string ToString()
    {
        Span<byte> b = stackalloc byte[6];
        CopyTo(b);
        return string.Create(CultureInfo.InvariantCulture, $"{b[0]:x2}:{b[1]:x2}:{b[2]:x2}:{b[3]:x2}:{b[4]:x2}:{b[5]:x2}");
    }
}
