using System.Buffers.Binary;
using System.Text;

namespace HostVM.Machine.Boot;

/// <summary>
/// An ELF64 little-endian RISC-V executable (firmware such as OpenSBI's fw_*.elf, a riscv-tests program):
/// its PT_LOAD segments, entry point and symbol table. Every offset and size in the file is checked
/// against the file's length; anything malformed raises <see cref="BootImageException"/> naming the file.
/// </summary>
public sealed class ElfImage
{
    public const ushort MachineRiscV = 243;

    private const int IdentSize = 16;
    private const int HeaderSize = 64;
    private const int ProgramHeaderSize = 56;
    private const int SectionHeaderSize = 64;
    private const int SymbolSize = 24;
    private const byte ClassElf32 = 1;
    private const byte ClassElf64 = 2;
    private const byte DataLittleEndian = 1;
    private const byte DataBigEndian = 2;
    private const ushort TypeRelocatable = 1;
    private const ushort TypeExecutable = 2;
    private const ushort TypeShared = 3;
    private const ushort TypeCore = 4;
    private const uint SegmentLoad = 1;
    private const uint SectionSymbolTable = 2;
    private const ushort ExtendedNumbering = 0xFFFF;
    private const byte BindingLocal = 0;

    private static readonly Dictionary<ushort, string> MachineNames = new()
    {
        [2] = "SPARC",
        [3] = "x86 (i386)",
        [8] = "MIPS",
        [20] = "PowerPC",
        [21] = "PowerPC 64-bit",
        [22] = "IBM S/390",
        [40] = "ARM (32-bit)",
        [43] = "SPARC V9",
        [62] = "x86-64",
        [183] = "AArch64",
        [243] = "RISC-V",
        [258] = "LoongArch",
    };

    private readonly Dictionary<string, ulong> _symbols;

    private ElfImage(string name, ulong entry, bool isPositionIndependent, IReadOnlyList<ElfSegment> segments, Dictionary<string, ulong> symbols)
    {
        Name = name;
        Entry = entry;
        IsPositionIndependent = isPositionIndependent;
        Segments = segments;
        _symbols = symbols;
    }

    /// <summary>The name errors use (usually the file name).</summary>
    public string Name { get; }

    public ulong Entry { get; }

    /// <summary>True for ET_DYN (a PIE such as OpenSBI's firmware); its segments still load at their given addresses.</summary>
    public bool IsPositionIndependent { get; }

    /// <summary>PT_LOAD segments in file order (empty ones left out).</summary>
    public IReadOnlyList<ElfSegment> Segments { get; }

    /// <summary>Named symbols from .symtab (a global definition wins over a local one of the same name).</summary>
    public IReadOnlyDictionary<string, ulong> Symbols => _symbols;

    public bool TryGetSymbol(string name, out ulong address) => _symbols.TryGetValue(name, out address);

    /// <summary>Parses an ELF image held in memory; <paramref name="name"/> is what errors call it.</summary>
    public static ElfImage Parse(ReadOnlyMemory<byte> file, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var reader = new Reader(file, name);
        var data = file.Span;

        if (data.Length < 4 || data[0] != 0x7F || data[1] != (byte)'E' || data[2] != (byte)'L' || data[3] != (byte)'F')
        {
            throw new BootImageException($"{name}: not an ELF file (it does not start with \\x7fELF)");
        }

        if (data.Length < IdentSize + 4)
        {
            throw reader.Truncated("ELF header");
        }

        byte elfClass = data[4];
        byte encoding = data[5];
        if (encoding == DataBigEndian)
        {
            throw new BootImageException($"{name}: is a big-endian ELF; RISC-V programs are little-endian");
        }

        if (encoding != DataLittleEndian)
        {
            throw new BootImageException($"{name}: corrupt ELF header (unknown data encoding {encoding})");
        }

        ushort machine = reader.U16(18, "ELF header");
        if (machine != MachineRiscV)
        {
            string what = MachineNames.TryGetValue(machine, out string? known) ? known : $"machine {machine}";
            throw new BootImageException($"{name}: is an ELF for {what}, not RISC-V 64-bit");
        }

        if (elfClass == ClassElf32)
        {
            throw new BootImageException($"{name}: is a 32-bit RISC-V ELF; HostVM runs RV64 programs (build with -march=rv64...)");
        }

        if (elfClass != ClassElf64)
        {
            throw new BootImageException($"{name}: corrupt ELF header (unknown class {elfClass})");
        }

        if (data.Length < HeaderSize)
        {
            throw reader.Truncated("ELF header");
        }

        ushort type = reader.U16(16, "ELF header");
        switch (type)
        {
            case TypeExecutable or TypeShared:
                break;
            case TypeRelocatable:
                throw new BootImageException($"{name}: is a relocatable object (.o), not an executable: link it first");
            case TypeCore:
                throw new BootImageException($"{name}: is a core dump, not an executable");
            default:
                throw new BootImageException($"{name}: is not an executable ELF (type {type})");
        }

        ulong entry = reader.U64(24, "ELF header");
        ulong programHeaders = reader.U64(32, "ELF header");
        ulong sectionHeaders = reader.U64(40, "ELF header");
        ushort programHeaderSize = reader.U16(54, "ELF header");
        uint programHeaderCount = reader.U16(56, "ELF header");
        ushort sectionHeaderSize = reader.U16(58, "ELF header");
        uint sectionCount = reader.U16(60, "ELF header");

        // Counts too big for the header live in section 0 (extended numbering).
        if (sectionHeaders != 0 && (sectionCount == 0 || programHeaderCount == ExtendedNumbering))
        {
            if (sectionHeaderSize < SectionHeaderSize)
            {
                throw new BootImageException($"{name}: corrupt ELF header (section header size {sectionHeaderSize}, expected {SectionHeaderSize})");
            }

            reader.Require(sectionHeaders, SectionHeaderSize, "ELF section header table");
            if (sectionCount == 0)
            {
                sectionCount = (uint)Math.Min(reader.U64(sectionHeaders + 32, "ELF section header table"), uint.MaxValue);
            }

            if (programHeaderCount == ExtendedNumbering)
            {
                programHeaderCount = reader.U32(sectionHeaders + 44, "ELF section header table");
            }
        }

        var segments = ReadSegments(reader, programHeaders, programHeaderSize, programHeaderCount);
        var symbols = ReadSymbols(reader, sectionHeaders, sectionHeaderSize, sectionCount);
        return new ElfImage(name, entry, type == TypeShared, segments, symbols);
    }

    /// <summary>The segments as a payload to place in RAM at their physical addresses.</summary>
    public BootPayload ToPayload() =>
        new(Name, Entry, [.. Segments.Select(s => new BootSegment(s.PhysicalAddress, s.Data, s.MemorySize))]);

    private static List<ElfSegment> ReadSegments(Reader reader, ulong table, ushort entrySize, uint count)
    {
        if (count == 0)
        {
            throw new BootImageException($"{reader.Name}: has no program headers, so nothing to load (is it an executable?)");
        }

        if (entrySize < ProgramHeaderSize)
        {
            throw new BootImageException($"{reader.Name}: corrupt ELF header (program header size {entrySize}, expected {ProgramHeaderSize})");
        }

        reader.Require(table, (ulong)entrySize * count, "ELF program header table");
        var segments = new List<ElfSegment>();
        for (uint i = 0; i < count; i++)
        {
            ulong at = table + ((ulong)i * entrySize);
            if (reader.U32(at, "ELF program header table") != SegmentLoad)
            {
                continue;
            }

            uint flags = reader.U32(at + 4, "ELF program header table");
            ulong offset = reader.U64(at + 8, "ELF program header table");
            ulong virtualAddress = reader.U64(at + 16, "ELF program header table");
            ulong physicalAddress = reader.U64(at + 24, "ELF program header table");
            ulong fileSize = reader.U64(at + 32, "ELF program header table");
            ulong memorySize = reader.U64(at + 40, "ELF program header table");

            if (fileSize > memorySize)
            {
                throw new BootImageException(
                    $"{reader.Name}: corrupt segment {i} (file size 0x{fileSize:x} is larger than its memory size 0x{memorySize:x})");
            }

            if (physicalAddress + memorySize < physicalAddress)
            {
                throw new BootImageException(
                    $"{reader.Name}: corrupt segment {i} (0x{memorySize:x} bytes at 0x{physicalAddress:x} run past the end of the address space)");
            }

            if (!reader.Fits(offset, fileSize))
            {
                throw new BootImageException(
                    $"{reader.Name}: truncated segment {i} (0x{fileSize:x} bytes at file offset 0x{offset:x}, file is {reader.Length} bytes)");
            }

            if (memorySize != 0)
            {
                segments.Add(new ElfSegment(physicalAddress, virtualAddress, reader.Slice(offset, fileSize), memorySize, flags));
            }
        }

        if (segments.Count == 0)
        {
            throw new BootImageException($"{reader.Name}: has no loadable (PT_LOAD) segments");
        }

        return segments;
    }

    private static Dictionary<string, ulong> ReadSymbols(Reader reader, ulong table, ushort entrySize, uint count)
    {
        var symbols = new Dictionary<string, ulong>(StringComparer.Ordinal);
        if (table == 0 || count == 0)
        {
            return symbols; // stripped: no section headers
        }

        if (entrySize < SectionHeaderSize)
        {
            throw new BootImageException($"{reader.Name}: corrupt ELF header (section header size {entrySize}, expected {SectionHeaderSize})");
        }

        reader.Require(table, (ulong)entrySize * count, "ELF section header table");
        var globals = new HashSet<string>(StringComparer.Ordinal);
        for (uint i = 0; i < count; i++)
        {
            ulong section = table + ((ulong)i * entrySize);
            if (reader.U32(section + 4, "ELF section header table") != SectionSymbolTable)
            {
                continue;
            }

            ulong offset = reader.U64(section + 24, "ELF section header table");
            ulong size = reader.U64(section + 32, "ELF section header table");
            uint link = reader.U32(section + 40, "ELF section header table");
            ulong symbolSize = reader.U64(section + 56, "ELF section header table");
            if (symbolSize < SymbolSize)
            {
                throw new BootImageException($"{reader.Name}: corrupt symbol table (entry size {symbolSize}, expected {SymbolSize})");
            }

            reader.Require(offset, size, "ELF symbol table");
            if (link >= count)
            {
                throw new BootImageException($"{reader.Name}: corrupt symbol table (its string table is section {link} of {count})");
            }

            ulong strings = table + ((ulong)link * entrySize);
            ulong stringsOffset = reader.U64(strings + 24, "ELF section header table");
            ulong stringsSize = reader.U64(strings + 32, "ELF section header table");
            reader.Require(stringsOffset, stringsSize, "ELF string table");

            for (ulong symbol = offset; symbol + symbolSize <= offset + size; symbol += symbolSize)
            {
                uint nameOffset = reader.U32(symbol, "ELF symbol table");
                byte info = reader.U8(symbol + 4, "ELF symbol table");
                ulong value = reader.U64(symbol + 8, "ELF symbol table");
                if (nameOffset == 0)
                {
                    continue;
                }

                if (nameOffset >= stringsSize)
                {
                    throw new BootImageException($"{reader.Name}: corrupt symbol table (a name lies outside the string table)");
                }

                string name = reader.CString(stringsOffset + nameOffset, stringsSize - nameOffset);
                bool global = info >> 4 != BindingLocal;
                if (global ? globals.Add(name) : !symbols.ContainsKey(name))
                {
                    symbols[name] = value;
                }
            }
        }

        return symbols;
    }

    /// <summary>Bounds-checked little-endian reads from the file; every failure is a <see cref="BootImageException"/>.</summary>
    private readonly struct Reader(ReadOnlyMemory<byte> file, string name)
    {
        public string Name { get; } = name;

        public int Length => file.Length;

        public bool Fits(ulong offset, ulong size) => offset <= (ulong)file.Length && size <= (ulong)file.Length - offset;

        public void Require(ulong offset, ulong size, string what)
        {
            if (!Fits(offset, size))
            {
                throw Truncated(what);
            }
        }

        public BootImageException Truncated(string what) =>
            new($"{Name}: truncated {what} (file is {file.Length} bytes)");

        public byte U8(ulong offset, string what)
        {
            Require(offset, 1, what);
            return file.Span[(int)offset];
        }

        public ushort U16(ulong offset, string what)
        {
            Require(offset, 2, what);
            return BinaryPrimitives.ReadUInt16LittleEndian(file.Span[(int)offset..]);
        }

        public uint U32(ulong offset, string what)
        {
            Require(offset, 4, what);
            return BinaryPrimitives.ReadUInt32LittleEndian(file.Span[(int)offset..]);
        }

        public ulong U64(ulong offset, string what)
        {
            Require(offset, 8, what);
            return BinaryPrimitives.ReadUInt64LittleEndian(file.Span[(int)offset..]);
        }

        public ReadOnlyMemory<byte> Slice(ulong offset, ulong size) => file.Slice((int)offset, (int)size);

        /// <summary>A NUL-terminated string within the next <paramref name="limit"/> bytes.</summary>
        public string CString(ulong offset, ulong limit)
        {
            var span = file.Span.Slice((int)offset, (int)Math.Min(limit, (ulong)file.Length - offset));
            int end = span.IndexOf((byte)0);
            if (end < 0)
            {
                throw new BootImageException($"{Name}: corrupt string table (a name is not NUL-terminated)");
            }

            return Encoding.UTF8.GetString(span[..end]);
        }
    }
}
