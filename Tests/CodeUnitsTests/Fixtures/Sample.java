package com.example;

import java.util.List;

/**
 * Stores users.
 */
@Service
public class UserStore extends Store {
    private List<String> names;

    public UserStore(int size) {
        this.names = new ArrayList<>();
    }

    /** Adds a user. */
    public boolean add(String name) {
        if (name == null) {
            return false;
        }
        return names.add(name);
    }
}

interface Named {
    String name();
}
