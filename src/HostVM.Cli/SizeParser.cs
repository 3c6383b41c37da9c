using System.Globalization;

namespace HostVM.Cli;

/// <summary>Memory sizes as QEMU writes them: a number with an optional K, M, G or T suffix; a bare number is MiB.</summary>
public static class SizeParser
{
    public static bool TryParse(string text, out ulong bytes)
    {
        bytes = 0;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        text = text.Trim();
        ulong multiplier = 1024 * 1024;
        char last = char.ToUpperInvariant(text[^1]);
        if (char.IsLetter(last))
        {
            multiplier = last switch
            {
                'K' => 1024UL,
                'M' => 1024UL * 1024,
                'G' => 1024UL * 1024 * 1024,
                'T' => 1024UL * 1024 * 1024 * 1024,
                _ => 0,
            };
            text = text[..^1];
            if (text.EndsWith('i') || text.EndsWith('I'))
            {
                return false;
            }
        }

        if (multiplier == 0 || !ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out ulong value))
        {
            return false;
        }

        try
        {
            bytes = checked(value * multiplier);
            return true;
        }
        catch (OverflowException)
        {
            return false;
        }
    }
}
