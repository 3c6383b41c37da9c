using HostVM.Machine.Cpu;

namespace HostVM.Machine.Tests.Cpu;

/// <summary>
/// Operands for randomized floating-point tests, biased toward the places where rounding goes
/// wrong: specials, subnormals, the overflow and underflow edges, significands with few bits
/// (exact results and exact ties) and operand pairs with close exponents.
/// </summary>
internal sealed class RandomFloats(int seed, int fracBits, int expBits)
{
    private readonly Random _random = new(seed);

    private int MaxField => (1 << expBits) - 1;

    private int Bias => MaxField >> 1;

    private ulong SignBit => 1UL << (fracBits + expBits);

    public ulong Bits() => (ulong)_random.NextInt64() ^ ((ulong)_random.Next(2) << 63);

    /// <summary>A value with exponent field near <paramref name="field"/> (clamped to the finite range).</summary>
    public ulong Near(int field)
    {
        field = Math.Clamp(field, 0, MaxField - 1);
        ulong fraction = Bits() & ((1UL << fracBits) - 1);
        int shape = _random.Next(4);
        if (shape == 0)
        {
            int keep = 1 + _random.Next(fracBits / 2 + 2);
            fraction &= ~((1UL << (fracBits - Math.Min(keep, fracBits))) - 1); // few significant bits
        }
        else if (shape == 1)
        {
            fraction = _random.Next(2) == 0 ? fraction | ((1UL << _random.Next(fracBits)) - 1) : fraction; // runs of ones
        }

        ulong sign = _random.Next(2) == 0 ? 0 : SignBit;
        return sign | ((ulong)field << fracBits) | fraction;
    }

    public ulong Special()
    {
        ulong inf = (ulong)MaxField << fracBits;
        ulong[] values =
        [
            0, inf, inf | (1UL << (fracBits - 1)), inf | 1, inf | (1UL << (fracBits - 2)), inf - 1,
            1UL << fracBits, 1, (1UL << fracBits) - 1, (ulong)Bias << fracBits, (ulong)(Bias - 1) << fracBits,
            ((ulong)Bias << fracBits) | 1, ((ulong)Bias << fracBits) - 1,
        ];
        return values[_random.Next(values.Length)] | (_random.Next(2) == 0 ? 0 : SignBit);
    }

    public ulong Any()
    {
        return _random.Next(16) switch
        {
            0 => Special(),
            1 => Bits() & ((SignBit << 1) - 1),
            2 => Near(0),
            3 => Near(MaxField - 1 - _random.Next(fracBits + 2)),
            4 => Near(1 + _random.Next(fracBits + 2)),
            _ => Near(Bias - 30 + _random.Next(60)),
        };
    }

    private int FieldOf(ulong v) => (int)((v >> fracBits) & (ulong)MaxField);

    /// <summary>A second operand that makes <paramref name="op"/> on <paramref name="a"/> interesting.</summary>
    public ulong Partner(string op, ulong a)
    {
        int fa = FieldOf(a);
        switch (_random.Next(4))
        {
            case 0:
                return Any();
            case 1:
                return Near(fa - (fracBits + 3) + _random.Next(2 * fracBits + 6));
            default:
                int edge = _random.Next(2) == 0 ? 2 - _random.Next(fracBits + 4) : MaxField - 2 + _random.Next(3);
                return op switch
                {
                    "mul" or "fma" => Near(edge - fa + Bias),
                    "div" => Near(fa - edge + Bias),
                    _ => Near(fa - 2 + _random.Next(5)),
                };
        }
    }

    /// <summary>An addend for fma close in magnitude to the product of <paramref name="a"/> and <paramref name="b"/>.</summary>
    public ulong Addend(ulong a, ulong b)
    {
        switch (_random.Next(4))
        {
            case 0:
                return Any();
            case 1:
                // Minus the rounded product, a few units off: massive cancellation, where the
                // result is (close to) the product's rounding error.
                ulong product = fracBits == 23
                    ? BitConverter.SingleToUInt32Bits(BitConverter.UInt32BitsToSingle((uint)a) * BitConverter.UInt32BitsToSingle((uint)b))
                    : BitConverter.DoubleToUInt64Bits(BitConverter.UInt64BitsToDouble(a) * BitConverter.UInt64BitsToDouble(b));
                return (product ^ SignBit) + (ulong)(long)(_random.Next(9) - 4);
        }

        int fp = FieldOf(a) + FieldOf(b) - Bias;
        return Near(fp - 3 + _random.Next(2 * fracBits + 6) - fracBits) ^ (_random.Next(2) == 0 ? 0 : SignBit);
    }

    public RoundingMode Mode() => (RoundingMode)_random.Next(5);

    public long Integer()
    {
        long v = _random.NextInt64() >> _random.Next(64);
        return _random.Next(2) == 0 ? v : -v;
    }
}
