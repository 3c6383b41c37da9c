using System.Buffers.Binary;

namespace HostVM.Machine.Tests.Boot;

/// <summary>
/// Writes small ELF64 files by hand: header, program headers, segment bytes, then a symbol table, its
/// string table and the section headers (null, .symtab, .strtab) at the end.
/// </summary>
internal sealed class TestElfBuilder
{
    public ushort Machine { get; set; } = 243;

    public ushort Type { get; set; } = 2;

    public byte Class { get; set; } = 2;

    public byte Encoding { get; set; } = 1;

    public ulong Entry { get; set; } = 0x8000_0000;

    public List<(ulong Address, byte[] Data, ulong MemorySize)> Segments { get; } = [];

    public List<(string Name, ulong Value, bool Global)> Symbols { get; } = [];

    public byte[] Build()
    {
        const int header = 64;
        const int phent = 56;
        const int shent = 64;
        var file = new List<byte>(new byte[header + (phent * Segments.Count)]);
        var segmentOffsets = new List<int>();
        foreach (var segment in Segments)
        {
            while (file.Count % 8 != 0)
            {
                file.Add(0);
            }

            segmentOffsets.Add(file.Count);
            file.AddRange(segment.Data);
        }

        // String table: a leading NUL, then each name.
        var strtab = new List<byte> { 0 };
        var symtab = new List<byte>(new byte[24]); // symbol 0 is the null symbol
        foreach (var symbol in Symbols)
        {
            var entry = new byte[24];
            BinaryPrimitives.WriteUInt32LittleEndian(entry, (uint)strtab.Count);
            entry[4] = (byte)((symbol.Global ? 1 : 0) << 4);
            BinaryPrimitives.WriteUInt16LittleEndian(entry.AsSpan(6), 1);
            BinaryPrimitives.WriteUInt64LittleEndian(entry.AsSpan(8), symbol.Value);
            symtab.AddRange(entry);
            strtab.AddRange(System.Text.Encoding.UTF8.GetBytes(symbol.Name));
            strtab.Add(0);
        }

        while (file.Count % 8 != 0)
        {
            file.Add(0);
        }

        int symtabOffset = file.Count;
        file.AddRange(symtab);
        int strtabOffset = file.Count;
        file.AddRange(strtab);
        while (file.Count % 8 != 0)
        {
            file.Add(0);
        }

        int shoff = file.Count;
        file.AddRange(new byte[shent * 3]);
        byte[] bytes = [.. file];
        var span = bytes.AsSpan();

        "\u007fELF"u8.CopyTo(span);
        span[4] = Class;
        span[5] = Encoding;
        span[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(span[16..], Type);
        BinaryPrimitives.WriteUInt16LittleEndian(span[18..], Machine);
        BinaryPrimitives.WriteUInt32LittleEndian(span[20..], 1);
        BinaryPrimitives.WriteUInt64LittleEndian(span[24..], Entry);
        BinaryPrimitives.WriteUInt64LittleEndian(span[32..], header);
        BinaryPrimitives.WriteUInt64LittleEndian(span[40..], (ulong)shoff);
        BinaryPrimitives.WriteUInt16LittleEndian(span[52..], header);
        BinaryPrimitives.WriteUInt16LittleEndian(span[54..], phent);
        BinaryPrimitives.WriteUInt16LittleEndian(span[56..], (ushort)Segments.Count);
        BinaryPrimitives.WriteUInt16LittleEndian(span[58..], shent);
        BinaryPrimitives.WriteUInt16LittleEndian(span[60..], 3);
        BinaryPrimitives.WriteUInt16LittleEndian(span[62..], 0);

        for (int i = 0; i < Segments.Count; i++)
        {
            var ph = span[(header + (phent * i))..];
            BinaryPrimitives.WriteUInt32LittleEndian(ph, 1); // PT_LOAD
            BinaryPrimitives.WriteUInt32LittleEndian(ph[4..], 7);
            BinaryPrimitives.WriteUInt64LittleEndian(ph[8..], (ulong)segmentOffsets[i]);
            BinaryPrimitives.WriteUInt64LittleEndian(ph[16..], Segments[i].Address);
            BinaryPrimitives.WriteUInt64LittleEndian(ph[24..], Segments[i].Address);
            BinaryPrimitives.WriteUInt64LittleEndian(ph[32..], (ulong)Segments[i].Data.Length);
            BinaryPrimitives.WriteUInt64LittleEndian(ph[40..], Segments[i].MemorySize);
        }

        var symtabHeader = span[(shoff + shent)..];
        BinaryPrimitives.WriteUInt32LittleEndian(symtabHeader[4..], 2); // SHT_SYMTAB
        BinaryPrimitives.WriteUInt64LittleEndian(symtabHeader[24..], (ulong)symtabOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(symtabHeader[32..], (ulong)symtab.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(symtabHeader[40..], 2); // sh_link: .strtab
        BinaryPrimitives.WriteUInt64LittleEndian(symtabHeader[56..], 24);

        var strtabHeader = span[(shoff + (2 * shent))..];
        BinaryPrimitives.WriteUInt32LittleEndian(strtabHeader[4..], 3); // SHT_STRTAB
        BinaryPrimitives.WriteUInt64LittleEndian(strtabHeader[24..], (ulong)strtabOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(strtabHeader[32..], (ulong)strtab.Count);
        return bytes;
    }

    public static TestElfBuilder Sample()
    {
        var elf = new TestElfBuilder { Entry = 0x8000_0004 };
        elf.Segments.Add((0x8000_0000, System.Text.Encoding.ASCII.GetBytes("code....data"), 0x20));
        elf.Segments.Add((0x8000_1000, [1, 2, 3, 4, 5, 6, 7, 8], 0x1000));
        elf.Symbols.Add(("_start", 0x8000_0004, true));
        elf.Symbols.Add(("tohost", 0x8000_1000, true));
        elf.Symbols.Add(("fromhost", 0x8000_1040, true));
        elf.Symbols.Add(("helper", 0x1234, false));
        elf.Symbols.Add(("helper", 0x8000_0008, true));
        return elf;
    }
}
