using System.Numerics;

namespace HostVM.Machine.Memory;

/// <summary>
/// The pages one dirty-log pass took: a bitmap over RAM's 4 KiB pages (page <c>i</c> is RAM offset
/// <c>i * 4096</c>). Made once and reused by every pass (<see cref="DirtyPageLog.TakeInto"/>
/// overwrites it), so a pass allocates nothing; <c>foreach</c> lists the page numbers in order.
/// </summary>
public sealed class DirtyPageSet
{
    public DirtyPageSet(int pageCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(pageCount);
        PageCount = pageCount;
        Words = new ulong[(pageCount + 63) / 64];
    }

    public int PageCount { get; }

    /// <summary>How many pages are in the set.</summary>
    public int Count
    {
        get
        {
            int count = 0;
            foreach (ulong word in Words)
            {
                count += BitOperations.PopCount(word);
            }

            return count;
        }
    }

    internal ulong[] Words { get; }

    public bool Contains(int page) =>
        (uint)page < (uint)PageCount && (Words[page >> 6] & (1UL << (page & 63))) != 0;

    public Enumerator GetEnumerator() => new(Words);

    /// <summary>Walks the set bits word by word (no allocation, skips clean words in one test).</summary>
    public struct Enumerator
    {
        private readonly ulong[] _words;
        private int _index;
        private ulong _rest;

        internal Enumerator(ulong[] words)
        {
            _words = words;
            _index = -1;
            _rest = 0;
            Current = -1;
        }

        public int Current { get; private set; }

        public bool MoveNext()
        {
            while (_rest == 0)
            {
                if (++_index >= _words.Length)
                {
                    return false;
                }

                _rest = _words[_index];
            }

            Current = (_index * 64) + BitOperations.TrailingZeroCount(_rest);
            _rest &= _rest - 1;
            return true;
        }
    }
}
