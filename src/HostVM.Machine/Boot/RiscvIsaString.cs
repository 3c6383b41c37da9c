namespace HostVM.Machine.Boot;

/// <summary>
/// Turns a riscv,isa string ("rv64imafdc_zicsr_zifencei") into the newer device-tree form:
/// riscv,isa-base ("rv64i") and riscv,isa-extensions (["i", "m", ..., "zicsr", "zifencei"]).
/// </summary>
internal static class RiscvIsaString
{
    public static (string Base, string[] Extensions) Split(string isa)
    {
        string text = isa.ToLowerInvariant();
        if (text.Length < 5 || !(text.StartsWith("rv64", StringComparison.Ordinal) || text.StartsWith("rv32", StringComparison.Ordinal)))
        {
            throw new ArgumentException($"\"{isa}\" is not a RISC-V ISA string (it starts with rv64 or rv32).", nameof(isa));
        }

        string xlen = text[2..4];
        var extensions = new List<string>();
        void Add(string name)
        {
            if (!extensions.Contains(name))
            {
                extensions.Add(name);
            }
        }

        int at = 4;

        // Single-letter extensions, each optionally followed by a version (2p1).
        while (at < text.Length && text[at] != '_' && text[at] is not ('z' or 's' or 'x'))
        {
            char letter = text[at++];
            if (letter == 'g')
            {
                foreach (string implied in (string[])["i", "m", "a", "f", "d", "zicsr", "zifencei"])
                {
                    Add(implied);
                }
            }
            else if (char.IsAsciiLetterLower(letter))
            {
                Add(letter.ToString());
            }

            at = SkipVersion(text, at);
        }

        // Multi-letter extensions, separated by underscores.
        foreach (string part in text[at..].Split('_', StringSplitOptions.RemoveEmptyEntries))
        {
            string name = StripVersion(part);
            if (name.Length > 0)
            {
                Add(name);
            }
        }

        string baseIsa = "rv" + xlen + (extensions.Contains("e") && !extensions.Contains("i") ? "e" : "i");
        return (baseIsa, [.. extensions]);
    }

    private static int SkipVersion(string text, int at)
    {
        while (at < text.Length && (char.IsAsciiDigit(text[at]) || (text[at] == 'p' && at + 1 < text.Length && char.IsAsciiDigit(text[at + 1]))))
        {
            at++;
        }

        return at;
    }

    /// <summary>"zicsr2p0" → "zicsr": drops a trailing version number.</summary>
    private static string StripVersion(string part)
    {
        int end = part.Length;
        while (end > 0 && char.IsAsciiDigit(part[end - 1]))
        {
            end--;
        }

        if (end < part.Length && end > 1 && part[end - 1] == 'p' && char.IsAsciiDigit(part[end - 2]))
        {
            end--;
            while (end > 0 && char.IsAsciiDigit(part[end - 1]))
            {
                end--;
            }
        }

        return part[..end];
    }
}
